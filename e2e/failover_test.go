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
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
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

	// The writer connects only through mysos-router's read-write port, as
	// an application would: the router must follow every failover and
	// switchover below, and no acknowledged write may be lost. A write the
	// router let reach a server that was not the primary would be missing
	// from the primary that follows (or make it errant), which checkNoLoss
	// and the single-writable-server check after each fault would see.
	router := startRouter(t, s, "shop")
	w := &ackWriter{primary: func() string { return router.rw }, password: password}
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
	// The router saw the primary change and cut connections to old ones.
	m := router.metrics()
	for _, want := range []string{"mysos_router_routing_changes_total", "mysos_router_closed_connections_total{cluster=\"shop\",namespace=\"default\",port=\"rw\"}"} {
		if !strings.Contains(m, want) {
			t.Errorf("the router's metrics lack %s:\n%s", want, m)
		}
	}
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
// When rows are missing it fails only after asking every instance, and
// says which rows each one lacks and which instances hold each of them: a
// row no instance holds was acknowledged although no replica had it; a row
// the primary holds and a replica lacks was lost by replication or by the
// copy that seeded the replica.
func checkNoLoss(t testing.TB, s *scheduler, acked []int, adminPW string) {
	t.Helper()
	cl := getCluster(t, s, "shop")
	var members []lossMember
	for _, in := range cl.Status.Instances {
		db := openMySQL(t, fmt.Sprintf("%s:%d", in.Host, in.Port), "mysos_admin", adminPW)
		var readOnly bool
		if err := db.QueryRow("SELECT @@GLOBAL.read_only").Scan(&readOnly); err != nil {
			t.Fatalf("%s: %v", in.Name, err)
		}
		if isPrimary := in.Name == cl.Status.CurrentPrimary; readOnly == isPrimary {
			t.Fatalf("%s read_only=%v; only the primary %s may be writable", in.Name, readOnly, cl.Status.CurrentPrimary)
		}
		members = append(members, lossMember{name: in.Name, primary: in.Name == cl.Status.CurrentPrimary, db: db})
	}
	// The primary must hold every acknowledged row now; the replicas get
	// them within a minute (10 s once the primary is known to lack some:
	// enough for the report).
	for i := range members {
		if members[i].primary {
			members[i].look(acked)
		}
	}
	wait := 60 * time.Second
	if primaryLacks(members) {
		wait = 10 * time.Second
	}
	complete := testutil.Eventually(wait, func() bool {
		done := true
		for i := range members {
			m := &members[i]
			if !m.primary && (m.err != nil || m.have == nil || len(m.missing) > 0) {
				m.look(acked)
			}
			done = done && m.err == nil && len(m.missing) == 0
		}
		return done
	})
	if complete {
		return
	}
	t.Fatalf("acknowledged rows are missing:%s\nstatus:%s", lossReport(members, len(acked)), describeInstances(getCluster(t, s, "shop")))
}

// lossMember is one instance as checkNoLoss saw it last.
type lossMember struct {
	name    string
	primary bool
	db      *sql.DB
	have    map[int]bool
	missing []int
	err     error
}

// look reads the instance's rows and which acknowledged ones it lacks.
func (m *lossMember) look(acked []int) {
	m.have, m.err = rowSet(m.db)
	m.missing = m.missing[:0]
	for _, id := range acked {
		if !m.have[id] {
			m.missing = append(m.missing, id)
		}
	}
}

func primaryLacks(members []lossMember) bool {
	for _, m := range members {
		if m.primary && (m.err != nil || len(m.missing) > 0) {
			return true
		}
	}
	return false
}

// lossReport says, for every instance, what it lacks and what it says of
// its replication, then, for each missing row, which instances hold it.
func lossReport(members []lossMember, acked int) string {
	var b strings.Builder
	var ids []int
	seen := map[int]bool{}
	for _, m := range members {
		role := "replica"
		if m.primary {
			role = "primary"
		}
		fmt.Fprintf(&b, "\n  %s (%s) lacks %d of %d acknowledged rows", m.name, role, len(m.missing), acked)
		if m.err != nil {
			fmt.Fprintf(&b, " (%v)", m.err)
		}
		if len(m.missing) > 0 {
			fmt.Fprintf(&b, ": %v", firstN(m.missing, 10))
		}
		fmt.Fprintf(&b, "\n    live: %s", liveReplication(m.db))
		for _, id := range m.missing {
			if !seen[id] && len(ids) < 20 {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	for _, id := range ids {
		var holders []string
		for _, m := range members {
			if m.have[id] {
				holders = append(holders, m.name)
			}
		}
		switch {
		case len(holders) == 0:
			fmt.Fprintf(&b, "\n  row %d: on no instance (acknowledged, yet no replica had it, or all lost it)", id)
		default:
			fmt.Fprintf(&b, "\n  row %d: on %s only", id, strings.Join(holders, ", "))
		}
	}
	return b.String()
}

func firstN(ids []int, n int) []int {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
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

// rowSet reads the ids in shop.w.
func rowSet(db *sql.DB) (map[int]bool, error) {
	rows, err := db.Query("SELECT id FROM shop.w")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[int]bool{}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	return have, rows.Err()
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

// ackedSince lists the ids acknowledged after since.
func (w *ackWriter) ackedSince(since time.Time) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for i, at := range w.ackedAt {
		if at.After(since) {
			out = append(out, w.acked[i])
		}
	}
	return out
}

// waitFailed waits for n more failed attempts.
func (w *ackWriter) waitFailed(t testing.TB, n int) {
	t.Helper()
	failed := func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.failed
	}
	base := failed()
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("%d more failed writes", n), func() bool { return failed() >= base+n })
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

// TestFencingABacklogTellsNoClientOK holds the reconciler's fencing of a
// former primary (stopWrites, pkg/reconciler/operation.go) to what MariaDB
// really does, on a server as a partition leaves it: the primary side of
// semi-sync on, no replica, and a backlog of commits waiting for an
// acknowledgement. With AFTER_SYNC and binary log group commit only the
// first group's leader waits for the acknowledgement: the next group's
// leader waits for it, the commits after that queue in a third group.
// Three commits whose clients gave up (as a writer's do after its
// timeout) make that backlog; two live clients' commits join the third
// group.
func TestFencingABacklogTellsNoClientOK(t *testing.T) {
	// The hazard, which the fake model of pkg/reconciler's tests
	// reproduces: killing the sessions whose clients are gone, the waiting
	// leader last, lets the whole backlog commit, and the live clients are
	// told OK although no replica has their rows.
	t.Run("KillingTheWaitingLeaderReleasesTheQueue", func(t *testing.T) {
		in, admin := backlogServer(t)
		stale := staleCommits(t, in, admin, 3)
		live := liveCommits(t, in, admin, 2)
		for i := len(stale) - 1; i >= 0; i-- {
			mustExec(t, admin.DB(), fmt.Sprintf("KILL CONNECTION %d", stale[i]))
		}
		for _, c := range live {
			if err := c.wait(t); err != nil {
				t.Fatalf("live client's commit %d: %v; MariaDB used to tell it OK once the leaders were killed (this test's premise)", c.id, err)
			}
		}
	})
	// stopWrites' order: read_only under way first (new writes wait
	// behind it, then fail), then every client disconnected, the session
	// waiting for the acknowledgement last: nobody is told OK, not even a
	// writer that reconnects at once after each error.
	t.Run("StopWritesTellsNobodyOK", func(t *testing.T) {
		in, admin := backlogServer(t)
		// A client whose connection is older than the backlog's sessions
		// (a pool's), and idle connections of its pool: PROCESSLIST lists
		// them after the backlog.
		pooled := openClient(t, in)
		for range 20 {
			openClient(t, in)
		}
		staleCommits(t, in, admin, 3)
		live := liveCommits(t, in, admin, 2)
		live = append(live, pooled.commit(3000))
		testutil.WaitFor(t, 10*time.Second, "the pooled client's commit in the backlog", func() bool {
			return len(sessionsWaiting(t, admin)) >= 6
		})
		w := &ackWriter{password: "app-pw", retryEvery: time.Millisecond,
			primary: func() string { return fmt.Sprintf("127.0.0.1:%d", in.Port) }}
		ctx, stop := context.WithCancel(context.Background())
		done := w.start(ctx)
		defer func() { stop(); <-done }()
		testutil.WaitFor(t, 10*time.Second, "the writer's commit waiting in the backlog", func() bool {
			return len(sessionsWaiting(t, admin)) >= 7
		})
		fenced := time.Now()
		octx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		barrier, err := admin.StartReadOnly(octx)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.KillConnections(octx, mysqltest.AdminUser); err != nil {
			t.Fatal(err)
		}
		if err := barrier.Wait(octx); err != nil {
			t.Fatal(err)
		}
		if err := admin.KillConnections(octx, mysqltest.AdminUser); err != nil {
			t.Fatal(err)
		}
		w.waitFailed(t, 5)
		stop()
		<-done
		for _, c := range live {
			if err := c.wait(t); err == nil {
				t.Errorf("live client's commit %d was told OK; no replica has it", c.id)
			}
		}
		if late := w.ackedSince(fenced); len(late) > 0 {
			t.Errorf("the reconnecting writer was told OK for %v after the fence began; no replica has them", late)
		}
		var readOnly bool
		if err := admin.DB().QueryRow("SELECT @@GLOBAL.read_only").Scan(&readOnly); err != nil || !readOnly {
			t.Fatalf("read_only=%v (%v); want on", readOnly, err)
		}
	})
}

// backlogServer is a writable MariaDB with the primary side of semi-sync
// on, waiting for ever, and no replica; an app account may insert into
// shop.w.
func backlogServer(t *testing.T) (*mysqltest.Instance, *mysql.Server) {
	t.Helper()
	in := mysqltest.Start(t, mysqltest.Options{Users: []mysql.User{{Name: "app", Host: "127.0.0.1", Password: "app-pw",
		Privileges: []string{"SELECT", "INSERT"}, On: "shop.*"}}})
	admin := in.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{"CREATE DATABASE shop", "CREATE TABLE shop.w (id INT PRIMARY KEY)", "SET GLOBAL read_only=OFF"} {
		if err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.EnableSemiSync(ctx, true, 1, 4294967295*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return in, admin
}

// staleCommits makes n commits wait for an acknowledgement, each on its
// own connection, one after the other, and gives up on them as a client's
// timeout does; their sessions stay, in the backlog. It returns their
// connection ids, oldest first.
func staleCommits(t *testing.T, in *mysqltest.Instance, admin *mysql.Server, n int) []int64 {
	t.Helper()
	var ids []int64
	for k := range n {
		c := commitAsync(t, in, 1000+k)
		testutil.WaitFor(t, 10*time.Second, "the commit in the backlog", func() bool {
			return len(sessionsWaiting(t, admin)) > k
		})
		c.cancel()
		if err := c.wait(t); err == nil {
			t.Fatalf("commit %d was told OK with no replica", c.id)
		}
		ids = append(ids, c.session)
	}
	return ids
}

// liveCommits adds n commits whose clients keep waiting.
func liveCommits(t *testing.T, in *mysqltest.Instance, admin *mysql.Server, n int) []*pendingCommit {
	t.Helper()
	var out []*pendingCommit
	base := len(sessionsWaiting(t, admin))
	for k := range n {
		out = append(out, commitAsync(t, in, 2000+k))
		testutil.WaitFor(t, 10*time.Second, "the commit in the backlog", func() bool {
			return len(sessionsWaiting(t, admin)) > base+k
		})
	}
	return out
}

// appClient is one connection of the app account.
type appClient struct {
	conn    *sql.Conn
	session int64
}

func openClient(t *testing.T, in *mysqltest.Instance) *appClient {
	t.Helper()
	conn, err := in.OpenAs(t, "app", "app-pw").DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := &appClient{conn: conn}
	if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&c.session); err != nil {
		t.Fatal(err)
	}
	return c
}

// pendingCommit is an INSERT under way on a connection of its own.
type pendingCommit struct {
	id      int
	session int64
	cancel  context.CancelFunc
	done    chan error
}

func commitAsync(t *testing.T, in *mysqltest.Instance, id int) *pendingCommit {
	t.Helper()
	return openClient(t, in).commit(id)
}

// commit starts inserting id; the connection is closed once it ends.
func (a *appClient) commit(id int) *pendingCommit {
	c := &pendingCommit{id: id, session: a.session, done: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c.cancel = cancel
	go func() {
		// A plain query, not a prepared statement: the session is in the
		// commit as soon as PROCESSLIST shows it (sessionsWaiting).
		_, err := a.conn.ExecContext(ctx, fmt.Sprintf("INSERT INTO shop.w VALUES (%d)", id))
		a.conn.Close()
		c.done <- err
	}()
	return c
}

// wait is the commit's outcome as its client saw it.
func (c *pendingCommit) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("commit %d: no outcome after 30s", c.id)
		return nil
	}
}

// sessionsWaiting lists the app's sessions in the commit pipeline (the
// backlog): waiting for the acknowledgement, or in the states of the
// commits queued behind it.
func sessionsWaiting(t *testing.T, admin *mysql.Server) []int64 {
	t.Helper()
	rows, err := admin.DB().Query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app' AND INFO LIKE 'INSERT%' " +
		"AND (STATE = 'Commit' OR STATE LIKE 'Waiting for semi-sync ACK%')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}
