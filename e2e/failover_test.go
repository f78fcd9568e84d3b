package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
)

const failoverManifest = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: shop
spec:
  replicas: 3
  resources: {cpus: 100m, mem: 256Mi, disk: 512Mi}
  failover:
    blockWindow: 1s
    reseedErrant: true
  users:
    - name: app
      databases: [shop]
      privileges: [SELECT, INSERT, CREATE]
`

// TestFailoverChaos runs a writer that inserts rows without pause, keeping
// every id whose COMMIT was acknowledged, while faults hit the primary:
// kill -9 of its mysqld, a crash of its executor or of its agent,
// switchovers, the
// scheduler killed at a random instant of a failover, etcd down while the
// primary dies. After each: exactly one writable server, the one Mysos
// names; every acknowledged row on it and, once replication converged, on
// every replica; the cluster Ready again; the events name every step.
// MYSOS_CHAOS_ROUNDS repeats the list (timings are random; the seed is
// logged).
func TestFailoverChaos(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(t, 4)
	etcd := testutil.StartEtcd(t)
	s := startScheduler(t, etcd.Endpoints, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, adminPW := startShop(t, s, failoverManifest)

	w := &ackWriter{primary: func() string {
		r := s.ctl("get", "clusters", "shop", "-o", "jsonpath={.status.endpoints.primary}")
		return strings.TrimSpace(r.stdout)
	}, password: password}
	ctx, stop := context.WithCancel(context.Background())
	done := w.start(ctx)
	defer func() { stop(); <-done }()

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("random timing seed %d", seed)
	killMysqld := func(t *testing.T, p spec.InstanceStatus) {
		if err := syscall.Kill(mysqldPID(t, p), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	faults := []struct {
		name     string
		failover bool // the primary must change
		inject   func(t *testing.T, primary spec.InstanceStatus)
	}{
		{"KillMysqld", true, killMysqld},
		{"SwitchoverToChosen", true, func(t *testing.T, p spec.InstanceStatus) { s.mustCtl("switchover", "shop", "--timeout=60s") }},
		{"KillExecutor", true, func(t *testing.T, p spec.InstanceStatus) {
			if err := c.KillExecutor(agentIndex(t, c, p.AgentID), activeFrameworks(c)[0], p.TaskID); err != nil {
				t.Fatal(err)
			}
		}},
		{"KillMysqldAgain", true, killMysqld},
		{"SwitchoverToNamed", true, func(t *testing.T, p spec.InstanceStatus) {
			to := replicaInstance(t, getCluster(t, s, "shop")).Name
			s.mustCtl("switchover", "shop", "--to", to, "--timeout=60s")
		}},
		// The agent process dies; the executor and mysqld live on. Mesos
		// reports the task unreachable, the reachable old primary is
		// fenced, and when the agent is back its task is recovered and
		// the old primary rejoins.
		{"StopAgent", true, func(t *testing.T, p spec.InstanceStatus) {
			i := agentIndex(t, c, p.AgentID)
			if err := c.StopAgent(i); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 60*time.Second, "a new primary", func() bool {
				return getCluster(t, s, "shop").Status.CurrentPrimary != p.Name
			})
			if err := c.RestartAgent(i); err != nil {
				t.Fatal(err)
			}
		}},
		// The scheduler dies at a random instant of the failover (the
		// steps take ~60 ms); the next one finishes it from etcd.
		{"KillSchedulerMidFailover", true, func(t *testing.T, p spec.InstanceStatus) {
			killMysqld(t, p)
			pause(context.Background(), time.Duration(rng.IntN(80))*time.Millisecond)
			s.kill9()
			s.start()
		}},
		// etcd crashes as the primary dies: nothing can be decided until
		// it is back; then the failover runs.
		{"EtcdDownDuringFailover", true, func(t *testing.T, p spec.InstanceStatus) {
			etcd.Stop()
			killMysqld(t, p)
			pause(context.Background(), time.Duration(200+rng.IntN(1300))*time.Millisecond)
			etcd.Start()
		}},
	}
	rounds := 1
	if n, err := strconv.Atoi(os.Getenv("MYSOS_CHAOS_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	survived, injected := 0, 0
	for round := range rounds {
		for _, f := range faults {
			injected++
			ok := t.Run(fmt.Sprintf("%s/round%d", f.name, round+1), func(t *testing.T) {
				waitReady(t, s)
				w.waitAcked(t, 5)
				// Within spec.failover.blockWindow (1 s here) of the last
				// failover, a dead primary is restarted in place rather
				// than failed over (anti-flapping): inject after it.
				testutil.WaitFor(t, 30*time.Second, "the block window to pass", func() bool {
					last := getCluster(t, s, "shop").Status.LastFailover
					return last == nil || time.Since(last.At) > 2*time.Second
				})
				before := getCluster(t, s, "shop")
				primary := *instanceNamed(before, before.Status.CurrentPrimary)
				f.inject(t, primary)
				testutil.WaitFor(t, 120*time.Second, "a new primary and the cluster Ready", func() bool {
					got := getCluster(t, s, "shop")
					return readyTrue(got) && (!f.failover || got.Status.CurrentPrimary != primary.Name)
				})
				w.waitAcked(t, 5)
				checkNoLoss(t, s, w.ackedIDs(), adminPW)
			})
			if !ok {
				break
			}
			survived++
		}
	}
	stop()
	<-done
	t.Logf("survived %d of %d faults injected (%d rounds of %d); %d writes acknowledged, %d attempts failed",
		survived, injected, rounds, len(faults), len(w.ackedIDs()), w.failed)
	events := s.mustCtl("events", "shop")
	for _, want := range []string{"FailoverStarted", "Fenced", "CandidateChosen", "Promoted", "FailoverCompleted", "SwitchoverStarted", "Demoted", "SwitchoverCompleted"} {
		if !strings.Contains(events, want) {
			t.Errorf("mysosctl events shop lacks %s:\n%s", want, events)
		}
	}
}

// startShop applies a cluster "shop", waits for it to be Ready, creates
// the table the writers fill, and returns the app's and mysos_admin's
// passwords.
func startShop(t testing.TB, s *scheduler, manifest string) (password, adminPW string) {
	t.Helper()
	s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", manifest))
	s.mustCtl("wait", "clusters/shop", "--for=condition=Ready", "--timeout=120s")
	password = strings.TrimSpace(s.mustCtl("credentials", "shop", "app", "-o", "password"))
	adminPW = strings.TrimSpace(s.mustCtl("credentials", "shop", "mysos_admin", "--all", "-o", "password"))
	mustExec(t, openMySQL(t, getCluster(t, s, "shop").Status.Endpoints.Primary, "app", password), "CREATE TABLE shop.w (id INT PRIMARY KEY)")
	return password, adminPW
}

func waitReady(t testing.TB, s *scheduler) {
	t.Helper()
	testutil.WaitFor(t, 120*time.Second, "the cluster Ready", func() bool { return readyTrue(getCluster(t, s, "shop")) })
}

// checkNoLoss asks every instance: exactly one is writable, the primary
// Mysos names; it has every acknowledged row, and every replica gets them.
func checkNoLoss(t testing.TB, s *scheduler, acked []int, adminPW string) {
	t.Helper()
	cl := getCluster(t, s, "shop")
	for _, in := range cl.Status.Instances {
		endpoint := fmt.Sprintf("%s:%d", in.Host, in.Port)
		db := openMySQL(t, endpoint, "mysos_admin", adminPW)
		var readOnly bool
		if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&readOnly); err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		if isPrimary := in.Name == cl.Status.CurrentPrimary; readOnly == isPrimary {
			t.Fatalf("%s read_only=%v; only the primary %s may be writable", in.Name, readOnly, cl.Status.CurrentPrimary)
		}
		if in.Name == cl.Status.CurrentPrimary {
			if missing, err := missingRows(db, acked); err != nil || missing > 0 {
				t.Fatalf("the primary %s lacks %d of %d acknowledged rows (%v)", in.Name, missing, len(acked), err)
			}
			continue
		}
		var missing int
		var err error
		if !testutil.Eventually(60*time.Second, func() bool {
			missing, err = missingRows(db, acked)
			return err == nil && missing == 0
		}) {
			t.Fatalf("%s lacks %d of %d acknowledged rows (%v): %v; status: %s\nlive: %s", in.Name, missing, len(acked), err,
				firstMissing(db, acked), describeInstances(getCluster(t, s, "shop")), liveReplication(db))
		}
	}
}

func describeInstances(c spec.MySQLCluster) string {
	var b strings.Builder
	for _, in := range c.Status.Instances {
		fmt.Fprintf(&b, "\n  %s role=%s gtid=%s", in.Name, in.Role, in.GTIDExecuted)
		if r := in.Replication; r != nil {
			fmt.Fprintf(&b, " source=%s io=%v sql=%v err=%q", r.Source, r.IORunning, r.SQLRunning, r.LastError)
		}
	}
	return b.String()
}

// liveReplication is what a server says of its replication now.
func liveReplication(db *sql.DB) string {
	var b strings.Builder
	for _, v := range []string{"gtid_binlog_pos", "gtid_slave_pos", "gtid_current_pos", "read_only"} {
		var val string
		_ = db.QueryRow("SELECT @@GLOBAL." + v).Scan(&val)
		fmt.Fprintf(&b, "%s=%s ", v, val)
	}
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		return b.String() + err.Error()
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals, _ := scanStrings(rows, len(cols))
		for i, c := range cols {
			switch c {
			case "Master_Host", "Master_Port", "Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error", "Gtid_IO_Pos", "Using_Gtid":
				fmt.Fprintf(&b, "%s=%s ", c, vals[i].String)
			}
		}
	}
	return b.String()
}

func firstMissing(db *sql.DB, ids []int) []int {
	have := map[int]bool{}
	rows, err := db.Query("SELECT id FROM shop.w")
	if err != nil {
		return nil
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		_ = rows.Scan(&id)
		have[id] = true
	}
	var out []int
	for _, id := range ids {
		if !have[id] && len(out) < 10 {
			out = append(out, id)
		}
	}
	return out
}

func missingRows(db *sql.DB, ids []int) (int, error) {
	rows, err := db.Query("SELECT id FROM shop.w")
	if err != nil {
		return len(ids), err
	}
	defer rows.Close()
	have := map[int]bool{}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return len(ids), err
		}
		have[id] = true
	}
	missing := 0
	for _, id := range ids {
		if !have[id] {
			missing++
		}
	}
	return missing, rows.Err()
}

// ackWriter inserts rows with fresh ids, one at a time, into whatever
// primary Mysos publishes, and keeps the ids whose commit returned OK.
type ackWriter struct {
	primary  func() string
	password string
	// retryEvery spaces retries after a failed write (default 20 ms).
	retryEvery time.Duration

	mu      sync.Mutex
	acked   []int
	ackedAt []time.Time
	failed  int
}

func (w *ackWriter) start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var db *sql.DB
		endpoint := ""
		for id := 1; ctx.Err() == nil; id++ {
			if db == nil {
				endpoint = w.primary()
				if endpoint == "" {
					pause(ctx, w.retry())
					continue
				}
				var err error
				if db, err = openDB(endpoint, "app", w.password); err != nil {
					continue
				}
			}
			ictx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := db.ExecContext(ictx, "INSERT INTO shop.w VALUES (?)", id)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
				w.ackedAt = append(w.ackedAt, time.Now())
			} else {
				w.failed++
			}
			w.mu.Unlock()
			if err != nil {
				db.Close()
				db = nil
				pause(ctx, w.retry())
			}
		}
		if db != nil {
			db.Close()
		}
	}()
	return done
}

func (w *ackWriter) retry() time.Duration {
	if w.retryEvery > 0 {
		return w.retryEvery
	}
	return 20 * time.Millisecond
}

// longestPause is the longest time between two acknowledged writes after
// since.
func (w *ackWriter) longestPause(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	for i := 1; i < len(w.ackedAt); i++ {
		if w.ackedAt[i].After(since) {
			longest = max(longest, w.ackedAt[i].Sub(w.ackedAt[i-1]))
		}
	}
	return longest
}

func (w *ackWriter) ackedIDs() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.acked...)
}

// waitAcked waits for n more acknowledged writes.
func (w *ackWriter) waitAcked(t testing.TB, n int) {
	t.Helper()
	base := len(w.ackedIDs())
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return len(w.ackedIDs()) >= base+n })
}

func openDB(endpoint, user, password string) (*sql.DB, error) {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, err
	}
	p, _ := strconv.Atoi(port)
	srv, err := mysql.Open(mysql.Endpoint{Host: host, Port: p, User: user, Password: password}, mysql.MariaDB)
	if err != nil {
		return nil, err
	}
	return srv.DB(), nil
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// mysqldPID finds the mysqld an executor started for an instance: its
// option file names the instance's address and port.
func mysqldPID(t testing.TB, in spec.InstanceStatus) int {
	t.Helper()
	for _, pid := range mysqldProcesses(t) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			cnf, ok := strings.CutPrefix(arg, "--defaults-file=")
			if ok && optionFileListensOn(cnf, in.Host, in.Port) {
				var n int
				fmt.Sscan(pid, &n)
				return n
			}
		}
	}
	t.Fatalf("no mysqld listens on %s:%d", in.Host, in.Port)
	return 0
}

func optionFileListensOn(path, host string, port int32) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	hostOK, portOK := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case fmt.Sprintf("port = %d", port):
			portOK = true
		case "bind_address = " + host:
			hostOK = true
		}
	}
	return hostOK && portOK
}
