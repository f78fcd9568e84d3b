package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
)

// TestDevClusterLeavesNothingBehind runs mysos-devcluster with network
// namespaces and cgroups isolation, kills it with SIGKILL, starts it again
// on the same work dir and stops it with SIGTERM: afterwards no namespace,
// link, route or cgroup of it is left on the machine.
func TestDevClusterLeavesNothingBehind(t *testing.T) {
	testutil.RequireRoot(t, "a dev cluster with network namespaces and cgroups")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(filepath.Join(binDir, "mysos-devcluster"), "--listen", addr, "--agents", "2",
			"--work-dir", dir, "--netns", "--isolation", "cgroups", "--fast")
		log := &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var block string
		testutil.WaitFor(t, 30*time.Second, "the dev cluster's agents", func() bool {
			resp, err := http.Get("http://" + addr + "/devcluster/agents")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var agents []struct{ Hostname string }
			if json.NewDecoder(resp.Body).Decode(&agents) != nil || len(agents) != 2 {
				return false
			}
			parts := strings.Split(agents[0].Hostname, ".")
			if len(parts) == 4 && parts[0] == "10" && parts[1] == "213" {
				block = parts[2]
			}
			return block != ""
		})
		if !strings.Contains(log.String(), "cgroups isolation") {
			t.Fatalf("cgroups isolation not in use:\n%s", log)
		}
		return cmd, block
	}
	first, block := start()
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	if !leftovers(t, block) {
		t.Fatal("a dev cluster killed with SIGKILL left nothing: this test cannot tell what a restart cleans")
	}
	second, again := start()
	_ = second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Fatalf("dev cluster exit after SIGTERM: %v", err)
	}
	if again != block {
		// Another test's dev cluster took the block meanwhile (and cleaned
		// it); what is on it now is that cluster's.
		t.Logf("the restarted dev cluster took block %s, not its work dir's %s", again, block)
	}
	if leftovers(t, again) {
		t.Fatal("namespaces, links, routes or cgroups of the dev cluster are left")
	}
}

// leftovers reports (and logs) what of dev cluster block B is on the
// machine: namespaces mysos-bB-*, links msbB/msvB*, the blackhole route,
// cgroups mysos-devcluster-bB.
func leftovers(t testing.TB, block string) bool {
	t.Helper()
	found := false
	check := func(what string, out []byte, pattern string) {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, pattern) {
				t.Logf("left: %s: %s", what, strings.TrimSpace(line))
				found = true
			}
		}
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	check("namespace", ns, "mysos-b"+block+"-")
	links, _ := exec.Command("ip", "-o", "link").Output()
	check("link", links, "msb"+block+":")
	check("link", links, "msv"+block+"a")
	routes, _ := exec.Command("ip", "route").Output()
	check("route", routes, "10.213."+block+".0/24")
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if d.Name() == "mysos-devcluster-b"+block {
			t.Logf("left: cgroup %s", p)
			found = true
			return filepath.SkipDir
		}
		if strings.Count(p, "/") > 6 {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}
