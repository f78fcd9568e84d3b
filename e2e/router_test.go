package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/spec"
)

// routerProc is a mysos-router process under test.
type routerProc struct {
	t            testing.TB
	rw, ro, http string
	cmd          *exec.Cmd
	log          *lockedBuffer
	exited       chan struct{}
}

// startRouter runs mysos-router for cluster against s's etcd (embedded or
// external, with its prefix) and waits until it routes: /readyz says a
// primary is known.
func startRouter(t testing.TB, s *scheduler, cluster string, extra ...string) *routerProc {
	t.Helper()
	rw, ro := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	r := runRouter(t, s, append([]string{"--cluster", cluster, "--rw-listen", rw, "--ro-listen", ro}, extra...)...)
	r.rw, r.ro = rw, ro
	return r
}

// runRouter runs mysos-router with args against s's etcd and waits until
// /readyz answers 200.
func runRouter(t testing.TB, s *scheduler, args ...string) *routerProc {
	t.Helper()
	r := &routerProc{t: t, log: &lockedBuffer{}, exited: make(chan struct{}),
		http: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
	args = append(args, "--http-listen", r.http, "--log-level", "debug")
	args = append(args, s.etcdArgs()...)
	r.cmd = exec.Command(filepath.Join(binDir, "mysos-router"), args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(r.stop)
	testutil.WaitFor(t, 30*time.Second, "mysos-router /readyz", func() bool {
		select {
		case <-r.exited:
			t.Fatalf("mysos-router exited early:\n%s", r.log)
		default:
		}
		return r.get("/readyz") == http.StatusOK
	})
	return r
}

// get returns the status of a GET of path on the router's HTTP port.
func (r *routerProc) get(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.http+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metrics returns the router's /metrics page.
func (r *routerProc) metrics() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.http+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (r *routerProc) stop() {
	if r.cmd.Process == nil {
		return
	}
	terminate(r.t, "mysos-router", r.cmd, r.exited, r.log)
}

// etcdArgs are the flags that point another process at s's etcd.
func (s *scheduler) etcdArgs() []string {
	var out []string
	for i := 0; i+1 < len(s.args); i++ {
		switch s.args[i] {
		case "--embedded-etcd-client-url":
			out = append(out, "--etcd-endpoints", s.args[i+1])
		case "--etcd-endpoints", "--etcd-prefix":
			out = append(out, s.args[i], s.args[i+1])
		}
	}
	return out
}

// TestRouterReadOnlyPortHonoursTheLagBound: through mysos-router, the
// read-write port reaches the primary and the read-only port the replicas;
// once a replica falls behind the bound (its SQL thread blocked by a global
// read lock while the writer goes on through the router) and the scheduler
// has published its lag, no read-only connection reaches it; when it has
// caught up, it serves again.
func TestRouterReadOnlyPortHonoursTheLagBound(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(t, 4)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, adminPW := startShop(t, s, failoverManifest)
	r := startRouter(t, s, "shop", "--max-replica-lag", "2s")
	cl := getCluster(t, s, "shop")
	primary := *instanceNamed(cl, cl.Status.CurrentPrimary)

	// Instances share port numbers on their own addresses: tell them apart
	// by server_id.
	ids := map[string]int{}
	for _, in := range cl.Status.Instances {
		ids[in.Name] = serverID(t, openMySQL(t, fmt.Sprintf("%s:%d", in.Host, in.Port), "mysos_admin", adminPW))
	}
	if id := serverID(t, openMySQL(t, r.rw, "app", password)); id != ids[primary.Name] {
		t.Fatalf("the read-write port reached server %d; want the primary %s (%d)", id, primary.Name, ids[primary.Name])
	}
	replicaIDs := map[int]bool{}
	for name, id := range ids {
		if name != primary.Name {
			replicaIDs[id] = true
		}
	}
	seen := roServers(t, r, password, 8)
	for id := range seen {
		if !replicaIDs[id] {
			t.Fatalf("the read-only port reached server %d; want only the replicas %v", id, replicaIDs)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("eight read-only connections reached %v; want both replicas in turn", seen)
	}

	w := &ackWriter{primary: func() string { return r.rw }, password: password}
	ctx, stop := context.WithCancel(context.Background())
	done := w.start(ctx)
	defer func() { stop(); <-done }()
	lagging := replicaInstance(t, cl)
	lock := openMySQL(t, fmt.Sprintf("%s:%d", lagging.Host, lagging.Port), "mysos_admin", adminPW)
	conn, err := lock.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "FLUSH TABLES WITH READ LOCK"); err != nil {
		t.Fatal(err)
	}
	lagged := fmt.Sprintf("%s:%d", lagging.Host, lagging.Port)
	testutil.WaitFor(t, 60*time.Second, "the scheduler to publish "+lagging.Name+" more than 2 s behind", func() bool {
		return publishedLag(t, s, lagged) > 2
	})
	for id := range roServers(t, r, password, 8) {
		if id == ids[lagging.Name] {
			t.Fatalf("a read-only connection reached %s, published more than 2 s behind", lagging.Name)
		}
	}
	if _, err := conn.ExecContext(context.Background(), "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, lagging.Name+" to serve reads again", func() bool {
		return roServers(t, r, password, 4)[ids[lagging.Name]] > 0
	})
	stop()
	<-done
	checkNoLoss(t, s, w.ackedIDs(), adminPW)
	if m := r.metrics(); !strings.Contains(m, `mysos_router_connections_total{cluster="shop",namespace="default",port="ro",result="forwarded"}`) {
		t.Errorf("the router's metrics lack its read-only connections:\n%s", m)
	}
}

// serverID is the server_id of the mysqld a connection reached.
func serverID(t testing.TB, db *sql.DB) int {
	t.Helper()
	var id int
	if err := db.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// roServers opens n connections through the read-only port and counts the
// servers they reached, by server_id.
func roServers(t testing.TB, r *routerProc, password string, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for range n {
		db := openMySQL(t, r.ro, "app", password)
		db.SetMaxIdleConns(0) // every query on a new connection: a new routing decision
		seen[serverID(t, db)]++
		db.Close()
	}
	return seen
}

// publishedLag is a replica's lag in the discovery record (-1 if absent).
func publishedLag(t testing.TB, s *scheduler, replica string) float64 {
	t.Helper()
	dump := s.etcdDump()
	for key, value := range dump {
		if strings.HasSuffix(key, "/discovery/"+spec.DefaultNamespace+"/shop") {
			var rec struct {
				Lag map[string]float64 `json:"replicaLagSeconds"`
			}
			if err := json.Unmarshal(value, &rec); err != nil {
				t.Fatal(err)
			}
			if lag, ok := rec.Lag[replica]; ok {
				return lag
			}
		}
	}
	return -1
}

// TestSchedulerRoutesClustersThatAskForIt: a scheduler started with
// --router-host routes a cluster whose spec names router ports, as
// mysos-router does: the read-write port reaches the primary and follows a
// switchover, the read-only port reaches the replicas; an applied change
// of the port moves the router; events and the scheduler's /metrics show it.
// A mysos-router with --router-host, on another address, routes the same
// ports from the spec as well.
func TestSchedulerRoutesClustersThatAskForIt(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(t, 3)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"),
		"--router-host", "127.0.0.1", "--router-ports", "1024-65535", "--router-max-replica-lag", "0")
	rwPort, roPort := testutil.FreePort(t), testutil.FreePort(t)
	withRouter := func(rw int) string {
		return failoverManifest + fmt.Sprintf("  router: {readWritePort: %d, readOnlyPort: %d}\n", rw, roPort)
	}
	password, adminPW := startShop(t, s, withRouter(rwPort))
	rw, ro := fmt.Sprintf("127.0.0.1:%d", rwPort), fmt.Sprintf("127.0.0.1:%d", roPort)
	tier := runRouter(t, s, "--router-host", "127.0.0.3", "--router-ports", "1024-65535")
	tierRW := func(port int) string { return fmt.Sprintf("127.0.0.3:%d", port) }

	ids := map[string]int{}
	cl := getCluster(t, s, "shop")
	for _, in := range cl.Status.Instances {
		ids[in.Name] = serverID(t, openMySQL(t, fmt.Sprintf("%s:%d", in.Host, in.Port), "mysos_admin", adminPW))
	}
	reaches := func(addr string) int {
		db := openMySQL(t, addr, "app", password)
		defer db.Close()
		var id int
		if err := db.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
			return 0 // refused while the primary changes, or not listening
		}
		return id
	}
	testutil.WaitFor(t, 30*time.Second, "the read-write port to reach the primary", func() bool {
		return reaches(rw) == ids[cl.Status.CurrentPrimary]
	})
	for range 4 {
		if id := reaches(ro); id == 0 || id == ids[cl.Status.CurrentPrimary] {
			t.Fatalf("the read-only port reached server %d; want a replica", id)
		}
	}

	s.mustCtl("switchover", "shop", "--timeout=60s")
	after := getCluster(t, s, "shop").Status.CurrentPrimary
	if after == cl.Status.CurrentPrimary {
		t.Fatalf("the switchover kept %s primary", after)
	}
	testutil.WaitFor(t, 30*time.Second, "the read-write port to follow the switchover to "+after, func() bool {
		return reaches(rw) == ids[after]
	})
	testutil.WaitFor(t, 30*time.Second, "mysos-router --router-host to route to "+after, func() bool {
		return reaches(tierRW(rwPort)) == ids[after]
	})
	mustExec(t, openMySQL(t, rw, "app", password), "INSERT INTO shop.w VALUES (1)")

	moved := testutil.FreePort(t)
	s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", withRouter(moved)))
	movedAddr := fmt.Sprintf("127.0.0.1:%d", moved)
	testutil.WaitFor(t, 30*time.Second, "the read-write port to move", func() bool { return reaches(movedAddr) == ids[after] })
	if id := reaches(rw); id != 0 {
		t.Fatalf("the read-write port the spec no longer names still reached server %d", id)
	}
	testutil.WaitFor(t, 30*time.Second, "mysos-router --router-host to move too", func() bool { return reaches(tierRW(moved)) == ids[after] })
	if m := tier.metrics(); !strings.Contains(m, `mysos_router_connections_total{cluster="shop",namespace="default",port="rw",result="forwarded"}`) {
		t.Errorf("mysos-router --router-host's metrics lack its connections:\n%s", m)
	}
	if events := s.mustCtl("events", "shop"); strings.Count(events, "RouterListening") < 2 || !strings.Contains(events, movedAddr) {
		t.Fatalf("events lack the router's ports:\n%s", events)
	}
	if d := s.mustCtl("describe", "clusters", "shop"); !strings.Contains(d, fmt.Sprintf("read-write :%d, read-only :%d", moved, roPort)) {
		t.Fatalf("describe does not show the router's ports:\n%s", d)
	}
	if m := scrapeMetrics(t, s); !strings.Contains(m, `mysos_router_connections_total{cluster="shop",namespace="default",port="rw",result="forwarded"}`) {
		t.Fatalf("the scheduler's /metrics lack its router's connections:\n%s", m)
	}
}

// TestSchedulerRefusesABadRouterHost: a mistyped --router-host ends the
// scheduler at start with an error naming the flag, rather than warnings
// on every routed cluster (or a scheduler half started).
func TestSchedulerRefusesABadRouterHost(t *testing.T) {
	cmd := exec.Command(filepath.Join(binDir, "mysos-scheduler"), "--data-dir", t.TempDir(),
		"--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		"--embedded-etcd-client-url", fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
		"--embedded-etcd-peer-url", fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
		"--router-host", "127.0.0.1:6446")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the scheduler did not end with a bad --router-host:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), `--router-host "127.0.0.1:6446"`) || !strings.Contains(string(out), "without a port") {
		t.Fatalf("err = %v, output:\n%s\nwant a failure naming --router-host", err, out)
	}
}
