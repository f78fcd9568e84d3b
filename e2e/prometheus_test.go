package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mysos-project/mysos/internal/testutil"
)

// TestPrometheusScrapesTheScheduler: a real Prometheus (Debian's), started
// on loopback by the test, scrapes a scheduler running a live cluster; its
// HTTP API returns the cluster's phase and the replicas' replication lag,
// and after a failover (kill -9 of the primary's mysqld) the failover
// counter has risen. Then the status page, in headless Chromium, shows the
// cluster, its roles and the failover.
func TestPrometheusScrapesTheScheduler(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	testutil.RequireBinary(t, "prometheus", "apt-get install -y prometheus")
	c := startDevCluster(t, 4)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	startShop(t, s, failoverManifest)
	prom := startPrometheus(t, s.addr)

	testutil.WaitFor(t, 60*time.Second, "Prometheus to have the cluster's phase and the replicas' lag", func() bool {
		return promValue(t, prom, `mysos_cluster_phase{cluster="shop",phase="Running"}`) == "1" &&
			promCount(t, prom, `mysos_instance_replication_lag_seconds{cluster="shop"}`) == 2
	})
	before := getCluster(t, s, "shop")
	old := *instanceNamed(before, before.Status.CurrentPrimary)
	if err := syscall.Kill(mysqldPID(t, old), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 90*time.Second, "Prometheus to count the failover", func() bool {
		return promValue(t, prom, `sum(mysos_operations_total{cluster="shop",kind="failover",result="completed"})`) == "1"
	})
	waitReady(t, s)
	t.Run("StatusPageInChromium", func(t *testing.T) { testStatusPage(t, s) })
}

// testStatusPage loads the scheduler's status page in headless Chromium
// (Debian's), checks what a person would read there after the failover,
// and takes a screenshot.
func testStatusPage(t *testing.T, s *scheduler) {
	testutil.RequireBinary(t, "chromium", "apt-get install -y chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+s.addr+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitVisible("#clusters")); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text("body"))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	primary := getCluster(t, s, "shop").Status.CurrentPrimary
	for _, want := range []string{"default/shop", "Running", primary, "primary", "replica", "FailoverCompleted"} {
		if !strings.Contains(text, want) {
			t.Errorf("the status page does not show %q:\n%s", want, text)
		}
	}
	if !strings.Contains(title, "1 cluster") {
		t.Errorf("title %q", title)
	}
	dir := os.Getenv("MYSOS_E2E_ARTIFACTS") // to keep the screenshot
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "status.png")
	if len(shot) < 1000 || os.WriteFile(path, shot, 0o644) != nil {
		t.Fatalf("screenshot of %d bytes", len(shot))
	}
	t.Logf("status page screenshot: %s (%d bytes)", path, len(shot))
}

// startPrometheus runs Prometheus on a loopback port, scraping the
// scheduler at addr every 200 ms, until the test ends.
func startPrometheus(t testing.TB, addr string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 200ms, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: mysos\n    static_configs: [{targets: [%q]}]\n", addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", out)
		}
	})
	base := "http://" + listen
	testutil.WaitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// promQuery runs an instant query through Prometheus' HTTP API.
func promQuery(t testing.TB, base, query string) []struct {
	Value []any `json:"value"`
} {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		return nil
	}
	return out.Data.Result
}

// promValue is the value of a query with one series, "" otherwise.
func promValue(t testing.TB, base, query string) string {
	r := promQuery(t, base, query)
	if len(r) != 1 || len(r[0].Value) != 2 {
		return ""
	}
	v, _ := r[0].Value[1].(string)
	return strings.TrimSpace(v)
}

func promCount(t testing.TB, base, query string) int { return len(promQuery(t, base, query)) }
