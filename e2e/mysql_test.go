package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
)

const mysqlManifest = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: shop
spec:
  replicas: %d
  resources: {cpus: 100m, mem: 256Mi, disk: 512Mi}
  users:
    - name: app
      databases: [shop]
      privileges: [SELECT, INSERT, UPDATE, DELETE, CREATE]
`

// TestMySQLClusterOnMesos runs real mysqld instances on the dev cluster: a
// 3-instance cluster becomes Ready with one writable primary and two
// read-only replicas; a row written on the primary reaches both; an
// instance whose task is restarted keeps its data; scaling to 5 gives the
// new replicas everything; an agent restart loses nothing; and no password
// shows in a process's command line or environment, a log, or the dev
// cluster's state.
func TestMySQLClusterOnMesos(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(t, 5)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	dir := t.TempDir()
	apply := func(replicas int) {
		s.mustCtl("apply", "-f", writeFile(t, dir, "shop.yaml", fmt.Sprintf(mysqlManifest, replicas)))
		s.mustCtl("wait", "clusters/shop", "--for=condition=Ready", "--timeout=120s")
	}
	apply(3)
	cl := getCluster(t, s, "shop")
	if cl.Status.Phase != spec.PhaseRunning || cl.Status.Endpoints == nil || len(cl.Status.Endpoints.Replicas) != 2 {
		t.Fatalf("status %+v; want Running with a primary and two replicas published", cl.Status)
	}
	hosts := map[string]bool{}
	for _, in := range cl.Status.Instances {
		hosts[in.Host] = true
	}
	if len(hosts) != 3 {
		t.Fatalf("instances on hosts %v; want three distinct agents", hosts)
	}

	password := strings.TrimSpace(s.mustCtl("credentials", "shop", "app", "-o", "password"))
	app := func(endpoint string) *sql.DB { return openMySQL(t, endpoint, "app", password) }
	primary := app(cl.Status.Endpoints.Primary)
	mustExec(t, primary, "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(32))")
	mustExec(t, primary, "INSERT INTO shop.orders VALUES (1, 'first')")
	for _, r := range cl.Status.Endpoints.Replicas {
		waitForRow(t, app(r), 1)
		if _, err := app(r).Exec("INSERT INTO shop.orders VALUES (99, 'nope')"); !isReadOnlyError(err) {
			t.Fatalf("a write on the replica %s: %v; want the read-only refusal", r, err)
		}
	}

	t.Run("RestartedTaskKeepsItsData", func(t *testing.T) {
		victim := replicaInstance(t, cl)
		fw := activeFrameworks(c)[0]
		if err := c.KillExecutor(agentIndex(t, c, victim.AgentID), fw, victim.TaskID); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 90*time.Second, "the instance relaunched and the cluster Ready", func() bool {
			got := getCluster(t, s, "shop")
			in := instanceNamed(got, victim.Name)
			return in != nil && in.TaskID != victim.TaskID && in.State == "TASK_RUNNING" && readyTrue(got)
		})
		after := instanceNamed(getCluster(t, s, "shop"), victim.Name)
		if after.AgentID != victim.AgentID || after.Volume != victim.Volume {
			t.Fatalf("relaunched on %s with volume %s; want %s and %s", after.AgentID, after.Volume, victim.AgentID, victim.Volume)
		}
		mustExec(t, primary, "INSERT INTO shop.orders VALUES (2, 'second')")
		waitForRow(t, app(fmt.Sprintf("%s:%d", after.Host, after.Port)), 2)
	})

	t.Run("ScaleTo5SeedsNewReplicas", func(t *testing.T) {
		adminPW := strings.TrimSpace(s.mustCtl("credentials", "shop", "mysos_admin", "--all", "-o", "password"))
		before := binlogTransactions(t, openMySQL(t, getCluster(t, s, "shop").Status.Endpoints.Primary, "mysos_admin", adminPW))
		apply(5)
		got := getCluster(t, s, "shop")
		if len(got.Status.Endpoints.Replicas) != 4 {
			t.Fatalf("endpoints %+v; want four replicas", got.Status.Endpoints)
		}
		for _, name := range []string{"shop-3", "shop-4"} {
			in := instanceNamed(got, name)
			endpoint := fmt.Sprintf("%s:%d", in.Host, in.Port)
			waitForRow(t, app(endpoint), 2)
			// Seeded from a copy, the new replica applied none of the
			// transactions from before it joined: its binary log lacks them.
			if n := binlogTransactions(t, openMySQL(t, endpoint, "mysos_admin", adminPW)); n >= before {
				t.Fatalf("%s logged %d transactions, the primary had %d before it joined: it replayed the binary log instead of being seeded", name, n, before)
			}
		}
		mustExec(t, primary, "INSERT INTO shop.orders VALUES (4, 'after scaling')")
		for _, r := range got.Status.Endpoints.Replicas {
			waitForRow(t, app(r), 4)
		}
	})

	t.Run("AgentRestartLosesNothing", func(t *testing.T) {
		got := getCluster(t, s, "shop")
		victim := replicaInstance(t, got)
		if err := c.RestartAgent(agentIndex(t, c, victim.AgentID)); err != nil {
			t.Fatal(err)
		}
		mustExec(t, primary, "INSERT INTO shop.orders VALUES (3, 'third')")
		testutil.WaitFor(t, 90*time.Second, "the cluster Ready after the agent restart", func() bool {
			return readyTrue(getCluster(t, s, "shop"))
		})
		after := instanceNamed(getCluster(t, s, "shop"), victim.Name)
		waitForRow(t, app(fmt.Sprintf("%s:%d", after.Host, after.Port)), 3)
	})

	t.Run("ScaleDownTo3", func(t *testing.T) {
		mustExec(t, primary, "INSERT INTO shop.orders VALUES (5, 'before scaling down')")
		apply(3)
		testutil.WaitFor(t, 90*time.Second, "three instances left", func() bool {
			return len(getCluster(t, s, "shop").Status.Instances) == 3
		})
		got := getCluster(t, s, "shop")
		if len(got.Status.Endpoints.Replicas) != 2 {
			t.Fatalf("endpoints %+v; want two replicas", got.Status.Endpoints)
		}
		for _, r := range got.Status.Endpoints.Replicas {
			waitForRow(t, app(r), 5)
		}
	})

	t.Run("NoPasswordLeaks", func(t *testing.T) {
		secrets := strings.Fields(s.mustCtl("credentials", "shop", "--all", "-o", "json"))
		var pws []string
		for i, f := range secrets {
			if f == `"password":` && i+1 < len(secrets) {
				pws = append(pws, strings.Trim(secrets[i+1], `",`))
			}
		}
		if len(pws) != 3 {
			t.Fatalf("found %d passwords in the credentials; want mysos_admin, mysos_repl and app", len(pws))
		}
		places := map[string][]byte{"scheduler log": s.log.Bytes()}
		for key, value := range s.etcdDump() {
			places["etcd "+key] = value
		}
		if len(places) < 10 {
			t.Fatalf("the etcd dump has %d keys; want the cluster's records", len(places))
		}
		for name, url := range stateURLs(c) {
			places[name] = httpGet(t, url)
		}
		addProcesses(t, places)
		addSandboxLogs(t, c, places)
		for where, content := range places {
			for _, pw := range pws {
				if bytes.Contains(content, []byte(pw)) {
					t.Errorf("a password appears in %s", where)
				}
			}
		}
	})

	t.Run("DeleteStopsEveryMysqld", func(t *testing.T) {
		s.mustCtl("delete", "clusters", "shop")
		s.mustCtl("wait", "clusters/shop", "--for=delete", "--timeout=60s")
		testutil.WaitFor(t, 30*time.Second, "every mysqld of the cluster gone", func() bool {
			return len(mysqldProcesses(t)) == 0
		})
	})
}

func openMySQL(t testing.TB, endpoint, user, password string) *sql.DB {
	t.Helper()
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	srv, err := mysql.Open(mysql.Endpoint{Host: host, Port: p, User: user, Password: password}, mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.DB()
}

func mustExec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitForRow waits until the row with id has replicated to db.
func waitForRow(t testing.TB, db *sql.DB, id int) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("row %d on the replica", id), func() bool {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM shop.orders WHERE id = ?", id).Scan(&n)
		return err == nil && n == 1
	})
}

// binlogTransactions counts the GTID events in a server's binary logs.
func binlogTransactions(t testing.TB, db *sql.DB) int {
	t.Helper()
	logs, err := db.Query("SHOW BINARY LOGS")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for logs.Next() {
		cols, _ := logs.Columns()
		vals := make([]any, len(cols))
		var name string
		vals[0] = &name
		for i := 1; i < len(cols); i++ {
			vals[i] = new(sql.RawBytes)
		}
		if err := logs.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	logs.Close()
	n := 0
	for _, name := range names {
		rows, err := db.Query("SHOW BINLOG EVENTS IN '" + name + "'")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals, err := scanStrings(rows, len(cols))
			if err != nil {
				t.Fatal(err)
			}
			if vals[2].String == "Gtid" { // Log_name, Pos, Event_type, ...
				n++
			}
		}
		rows.Close()
	}
	return n
}

func isReadOnlyError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "read-only")
}

func readyTrue(c spec.MySQLCluster) bool {
	r := c.Status.FindCondition(spec.ConditionReady)
	return r != nil && r.Status == spec.ConditionTrue && r.ObservedGeneration == c.Metadata.Generation
}

func instanceNamed(c spec.MySQLCluster, name string) *spec.InstanceStatus {
	for i := range c.Status.Instances {
		if c.Status.Instances[i].Name == name {
			return &c.Status.Instances[i]
		}
	}
	return nil
}

func replicaInstance(t testing.TB, c spec.MySQLCluster) spec.InstanceStatus {
	t.Helper()
	for _, in := range c.Status.Instances {
		if in.Role == "replica" {
			return in
		}
	}
	t.Fatalf("no replica among %+v", c.Status.Instances)
	return spec.InstanceStatus{}
}

// stateURLs are the dev cluster's state views: the master's and every agent's.
func stateURLs(c *devcluster.Cluster) map[string]string {
	out := map[string]string{"master state": c.LeaderURL() + "/master/state"}
	for _, a := range c.Agents() {
		out["agent "+a.Hostname+" state"] = "http://" + a.Address + "/state"
	}
	return out
}

func httpGet(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// addProcesses adds every process's command line and environment.
func addProcesses(t testing.TB, places map[string][]byte) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), f)); err == nil {
				places["/proc/"+e.Name()+"/"+f] = b
			}
		}
	}
}

// addSandboxLogs adds every file under the agents' work dirs that is a log:
// executors' stdout and stderr, mysqld's error logs.
func addSandboxLogs(t testing.TB, c *devcluster.Cluster, places map[string][]byte) {
	for _, a := range c.Agents() {
		av, err := fetchAgentState(a)
		if err != nil {
			t.Fatal(err)
		}
		_ = filepath.WalkDir(av.Flags.WorkDir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			base := filepath.Base(p)
			if base == "stdout" || base == "stderr" || strings.HasSuffix(base, ".err") || strings.HasSuffix(base, ".log") {
				if b, err := os.ReadFile(p); err == nil {
					places[p] = b
				}
			}
			return nil
		})
	}
}

// mysqldProcesses are the mariadbd processes Mysos' executors started
// (their config lives in a mysos- run directory).
func mysqldProcesses(t testing.TB) []string {
	var out []string
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte("--defaults-file="+os.TempDir()+"/mysos-")) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue // a zombie waiting for its reaper is gone already
		}
		out = append(out, e.Name())
	}
	return out
}

// TestOriginalMysosFlow runs the original Mysos' end-to-end test through
// its REST API (--legacy-api): create a cluster by form, wait for its
// master, SELECT 1 as cluster_user with cluster_password, delete it with
// the password, wait for it to go.
func TestOriginalMysosFlow(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	c := startDevCluster(t, 1)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"), "--legacy-api")
	form := url.Values{"cluster_user": {"mysos"}, "num_nodes": {"1"}, "cluster_password": {"testpasswd"},
		"size": {`{"mem":"700mb","disk":"3gb","cpus":1.0}`}}
	resp, err := http.PostForm("http://"+s.addr+"/clusters/legacy", form)
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if created["cluster_password"] != "testpasswd" || !strings.HasSuffix(created["cluster_url"], "/clusters/legacy") {
		t.Fatalf("create answered %v", created)
	}

	var master string
	testutil.WaitFor(t, 90*time.Second, "the cluster's master", func() bool {
		got := getCluster(t, s, "legacy")
		if got.Status.Endpoints != nil {
			master = got.Status.Endpoints.Primary
		}
		return master != ""
	})
	db := openMySQL(t, master, "mysos", "testpasswd")
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}

	del := func(password string) int {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+s.addr+"/clusters/legacy", strings.NewReader(url.Values{"password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := del("wrong"); code != http.StatusForbidden {
		t.Fatalf("delete with a wrong password: %d; want 403", code)
	}
	if code := del("testpasswd"); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	s.mustCtl("wait", "clusters/legacy", "--for=delete", "--timeout=60s")
}

// TestMySQLOnNetnsAgents runs a cluster on agents with network namespaces
// of their own: replication crosses the bridge between them; a partitioned
// replica's task becomes unreachable and its mysqld unreachable from the
// scheduler; healing brings the same task back and the cluster Ready.
func TestMySQLOnNetnsAgents(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	testutil.RequireRoot(t, "a dev cluster with network namespaces")
	c := startDevClusterWith(t, devcluster.Config{Agents: 3, Netns: true})
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", fmt.Sprintf(mysqlManifest, 3)))
	s.mustCtl("wait", "clusters/shop", "--for=condition=Ready", "--timeout=120s")
	cl := getCluster(t, s, "shop")
	if !strings.HasPrefix(cl.Status.Endpoints.Primary, "10.213.") {
		t.Fatalf("primary at %s; want an agent's own address", cl.Status.Endpoints.Primary)
	}
	password := strings.TrimSpace(s.mustCtl("credentials", "shop", "app", "-o", "password"))
	primary := openMySQL(t, cl.Status.Endpoints.Primary, "app", password)
	mustExec(t, primary, "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(32))")
	mustExec(t, primary, "INSERT INTO shop.orders VALUES (1, 'across the bridge')")
	for _, r := range cl.Status.Endpoints.Replicas {
		waitForRow(t, openMySQL(t, r, "app", password), 1)
	}

	victim := replicaInstance(t, cl)
	i := agentIndex(t, c, victim.AgentID)
	if err := c.PartitionAgent(i); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "the replica's task unreachable and its mysqld silent", func() bool {
		in := instanceNamed(getCluster(t, s, "shop"), victim.Name)
		return in.State == "TASK_UNREACHABLE"
	})
	conn, err := net.DialTimeout("tcp4", fmt.Sprintf("%s:%d", victim.Host, victim.Port), 300*time.Millisecond)
	if err == nil {
		conn.Close()
		t.Fatal("the scheduler's host still reaches the partitioned replica")
	}
	if err := c.HealAgent(i); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "the same task back and the cluster Ready", func() bool {
		got := getCluster(t, s, "shop")
		in := instanceNamed(got, victim.Name)
		return in.TaskID == victim.TaskID && in.State == "TASK_RUNNING" && readyTrue(got)
	})
}

// scanStrings scans the current row's n columns as nullable strings.
func scanStrings(rows *sql.Rows, n int) ([]sql.NullString, error) {
	vals := make([]sql.NullString, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}
