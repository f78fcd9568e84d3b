package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/spec"
)

// writerEnv makes the e2e test binary a writer (see runWriter): the
// partition test starts it inside an agent's network namespace.
const writerEnv = "MYSOS_E2E_WRITER"

// runWriter inserts rows with ids from first up into shop.w at endpoint,
// one at a time, forever, and prints "ACK <id> <unix nanos>" for every
// commit the server acknowledged, "ERR <id> <unix nanos> <error>" for every
// other attempt. spec is "endpoint user password first".
func runWriter(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "writer: want endpoint user password first-id")
		return 2
	}
	first, _ := strconv.Atoi(f[3])
	db, err := openDB(f[0], f[1], f[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	// After a failed write the next one waits for the pacer's next tick, so
	// an unreachable server is not hammered.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for id := first; ; id++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := db.ExecContext(ctx, "INSERT INTO shop.w VALUES (?)", id)
		cancel()
		if err == nil {
			fmt.Fprintf(out, "ACK %d %d\n", id, time.Now().UnixNano())
		} else {
			fmt.Fprintf(out, "ERR %d %d %s\n", id, time.Now().UnixNano(), strings.ReplaceAll(err.Error(), "\n", " "))
		}
		if out.Flush() != nil {
			return 0
		}
		if err != nil {
			<-pace.C
		}
	}
}

// nsWriter is a runWriter process inside a namespace, and what it printed.
type nsWriter struct {
	mu       sync.Mutex
	acked    []int
	at       []time.Time
	attempts []writeAttempt // every attempt, acknowledged or not
}

// writeAttempt is one INSERT of a writer: acknowledged when err is "".
type writeAttempt struct {
	id  int
	at  time.Time
	err string
}

func startNSWriter(t *testing.T, netns, endpoint, password string, first int) *nsWriter {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", netns, os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s app %s %d", writerEnv, endpoint, password, first))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &nsWriter{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var id int
			var nanos int64
			line := sc.Text()
			if _, err := fmt.Sscanf(line, "ACK %d %d", &id, &nanos); err == nil {
				w.mu.Lock()
				w.acked, w.at = append(w.acked, id), append(w.at, time.Unix(0, nanos))
				w.attempts = append(w.attempts, writeAttempt{id: id, at: time.Unix(0, nanos)})
				w.mu.Unlock()
			} else if _, err := fmt.Sscanf(line, "ERR %d %d", &id, &nanos); err == nil {
				f := strings.SplitN(line, " ", 4)
				msg := "error"
				if len(f) == 4 {
					msg = f[3]
				}
				w.mu.Lock()
				w.attempts = append(w.attempts, writeAttempt{id: id, at: time.Unix(0, nanos), err: msg})
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
	})
	return w
}

// ackedAfter lists the ids acknowledged after t.
func (w *nsWriter) ackedAfter(t time.Time) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int
	for i, at := range w.at {
		if at.After(t) {
			out = append(out, w.acked[i])
		}
	}
	return out
}

// instant names a moment of the test, for nsWriter.timeline.
type instant struct {
	name string
	at   time.Time
}

// timeline tells what the writer's attempts met, relative to the cut (the
// first of marks): how many were acknowledged before it, then every
// acknowledgement after it, with runs of attempts that failed alike folded
// into one line, and the marks in their place.
func (w *nsWriter) timeline(marks ...instant) string {
	w.mu.Lock()
	attempts := slices.Clone(w.attempts)
	w.mu.Unlock()
	if len(marks) == 0 {
		return ""
	}
	cut := marks[0].at
	rel := func(at time.Time) string { return fmt.Sprintf("%+.3fs", at.Sub(cut).Seconds()) }
	var b strings.Builder
	before, last := 0, -1
	for i, a := range attempts {
		if !a.at.After(cut) && a.err == "" {
			before, last = before+1, i
		}
	}
	if last >= 0 {
		fmt.Fprintf(&b, "\n  %d acknowledged before the cut, the last %d at %s", before, attempts[last].id, rel(attempts[last].at))
	}
	lines, m := 0, 0
	for i := 0; i < len(attempts) && lines < 80; i++ {
		a := attempts[i]
		if !a.at.After(cut) {
			continue
		}
		for ; m < len(marks) && !marks[m].at.After(a.at); m++ {
			fmt.Fprintf(&b, "\n  %s %s", rel(marks[m].at), marks[m].name)
		}
		j := i
		for j+1 < len(attempts) && a.err != "" && attempts[j+1].err == a.err && (m == len(marks) || attempts[j+1].at.Before(marks[m].at)) {
			j++
		}
		switch {
		case a.err == "":
			fmt.Fprintf(&b, "\n  %s ACK %d", rel(a.at), a.id)
		case j == i:
			fmt.Fprintf(&b, "\n  %s ERR %d: %s", rel(a.at), a.id, a.err)
		default:
			fmt.Fprintf(&b, "\n  %s..%s ERR %d..%d (%d attempts): %s", rel(a.at), rel(attempts[j].at), a.id, attempts[j].id, j-i+1, a.err)
		}
		i, lines = j, lines+1
	}
	for ; m < len(marks); m++ {
		fmt.Fprintf(&b, "\n  %s %s", rel(marks[m].at), marks[m].name)
	}
	return b.String()
}

func (w *nsWriter) ids() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.acked...)
}

// TestFailoverUnderPartition cuts the primary's agent off (--netns: its own
// namespace, link down, the host's blackhole route catching its subnet):
// its mysqld keeps running, and a client inside its namespace keeps
// writing to it. Mesos reports the task unreachable, Mysos fails over, and
// not one of the cut-off client's writes is acknowledged after the fence,
// neither during the partition nor after it heals; the old primary comes
// back fenced and rejoins or is re-seeded; every acknowledged write of
// either writer is on every instance.
//
// Detected by Mesos, the master marks the agent unreachable within a second
// (the dev cluster's fast health checks). Detected by SQL, Mesos would take
// 100 s (as real Mesos' 75 s): the scheduler no longer reaches the primary's
// mysqld, the replicas report their source lost (slave_net_timeout 4 s),
// and after spec.failover.unreachableTimeout (2 s here) Mysos fails over.
func TestFailoverUnderPartition(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	testutil.RequireBinary(t, "ip", "apt-get install -y iproute2")
	testutil.RequireRoot(t, "a dev cluster with network namespaces")
	t.Run("DetectedByMesos", func(t *testing.T) {
		testPartition(t, devcluster.FastTimeouts(), failoverManifest, "TASK_UNREACHABLE")
	})
	t.Run("DetectedBySQL", func(t *testing.T) {
		slow := devcluster.FastTimeouts()
		slow.AgentPing, slow.MaxAgentPings = 10*time.Second, 10
		manifest := strings.Replace(failoverManifest, "blockWindow: 1s", "blockWindow: 1s\n    unreachableTimeout: 2s", 1)
		testPartition(t, slow, manifest, "has not answered")
	})
}

func testPartition(t *testing.T, timeouts devcluster.Timeouts, manifest, detectedBy string) {
	c := startDevClusterWith(t, devcluster.Config{Agents: 4, Netns: true, Timeouts: timeouts})
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, adminPW := startShop(t, s, manifest)
	before := getCluster(t, s, "shop")
	old := *instanceNamed(before, before.Status.CurrentPrimary)
	agent := agentIndex(t, c, old.AgentID)

	host := &ackWriter{password: password, primary: func() string {
		return strings.TrimSpace(s.ctl("get", "clusters", "shop", "-o", "jsonpath={.status.endpoints.primary}").stdout)
	}}
	ctx, stop := context.WithCancel(context.Background())
	done := host.start(ctx)
	defer func() { stop(); <-done }()
	inside := startNSWriter(t, c.AgentNetns(agent), before.Status.Endpoints.Primary, password, 50_000_000)
	testutil.WaitFor(t, 30*time.Second, "both writers acknowledged", func() bool {
		return len(inside.ids()) >= 5 && len(host.ackedIDs()) >= 5
	})

	if err := c.PartitionAgent(agent); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	route, _ := exec.Command("ip", "route", "get", old.Host).CombinedOutput()
	if !strings.Contains(string(route), "blackhole") && !strings.Contains(string(route), "unreachable") && !strings.Contains(string(route), "Invalid argument") {
		t.Fatalf("ip route get %s: %s; want the blackhole, so nothing for the cut agent leaves the machine", old.Host, route)
	}
	testutil.WaitFor(t, 60*time.Second, "a new primary published", func() bool {
		got := getCluster(t, s, "shop")
		return got.Status.Operation == nil && got.Status.CurrentPrimary != old.Name && got.Status.Endpoints != nil &&
			got.Status.Endpoints.Primary != "" && got.Status.Endpoints.Primary != before.Status.Endpoints.Primary
	})
	fenced := eventTime(t, s, "Fenced", cut)
	if started := eventMessage(t, s, "FailoverStarted", cut); !strings.Contains(started, detectedBy) {
		t.Fatalf("the failover started for %q; want it detected by %q", started, detectedBy)
	}
	host.waitAcked(t, 5)
	if late := inside.ackedAfter(fenced); len(late) > 0 {
		t.Fatalf("the cut-off primary acknowledged %d write(s) after the fence at %s: %v", len(late), fenced.Format(time.RFC3339Nano), late)
	}
	t.Logf("partition at %s, fenced %s later, failed over to %s", cut.Format(time.RFC3339Nano), fenced.Sub(cut), getCluster(t, s, "shop").Status.CurrentPrimary)

	if err := c.HealAgent(agent); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	t.Logf("the old primary %s once healed: %s", old.Name, oldPrimaryHolds(fmt.Sprintf("%s:%d", old.Host, old.Port), adminPW, inside.ids()))
	waitReady(t, s)
	host.waitAcked(t, 5)
	// Once healed, the old primary is still writable, with a backlog of
	// the cut-off client's commits waiting for acknowledgements that
	// cannot come (it gave up on each after 2 s and reconnected). Mysos
	// fences it before it rejoins or is re-seeded, and nothing may tell
	// the client OK then: killing the session that waits for the
	// acknowledgement lets the whole backlog commit, and a session of the
	// client's that was not disconnected first would be told OK for a
	// row only the old primary has (which its re-seeding then drops).
	// No write of the cut-off client is acknowledged after the fence, and
	// every acknowledged write is on every instance.
	t.Logf("the writer inside the cut agent:%s", inside.timeline(instant{"cut", cut}, instant{"fenced", fenced}, instant{"healed", healed}))
	if late := inside.ackedAfter(fenced); len(late) > 0 {
		t.Errorf("the old primary acknowledged %d write(s) of the cut-off client after the fence at %s, once healed: %v",
			len(late), fenced.Format(time.RFC3339Nano), late)
	}
	checkNoLoss(t, s, append(host.ackedIDs(), inside.ids()...), adminPW)
	t.Logf("%d writes acknowledged from the host, %d from inside the cut agent", len(host.ackedIDs()), len(inside.ids()))
}

// eventTime is when the first event with reason happened after since.
func eventTime(t *testing.T, s *scheduler, reason string, since time.Time) time.Time {
	t.Helper()
	return firstEvent(t, s, reason, since).Time
}

func eventMessage(t *testing.T, s *scheduler, reason string, since time.Time) string {
	t.Helper()
	return firstEvent(t, s, reason, since).Message
}

func firstEvent(t *testing.T, s *scheduler, reason string, since time.Time) spec.Event {
	t.Helper()
	var list spec.EventList
	out := s.mustCtl("events", "shop", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		if ev.Reason == reason && ev.Time.After(since) {
			return ev
		}
	}
	t.Fatalf("no %s event after %s:\n%s", reason, since, out)
	return spec.Event{}
}

// oldPrimaryHolds says what a former primary holds right after the
// partition healed (it is fenced and re-seeded soon after): its GTID
// position, whether it is read-only and waits for semi-sync
// acknowledgements, and which of the cut-off writer's acknowledged rows it
// has; for a failure's report, so it never fails the test itself.
func oldPrimaryHolds(endpoint, adminPW string, acked []int) string {
	db, err := openDB(endpoint, "mysos_admin", adminPW)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var pos, semi string
	var readOnly bool
	var have map[int]bool
	if !testutil.Eventually(10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.read_only, "+
			"(SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS')").Scan(&pos, &readOnly, &semi)
		if err == nil {
			have, err = rowSet(db)
		}
		return err == nil
	}) {
		return fmt.Sprintf("unreachable: %v", err)
	}
	var held []int
	for _, id := range acked {
		if have[id] {
			held = append(held, id)
		}
	}
	return fmt.Sprintf("gtid_binlog_pos=%s read_only=%v semi-sync=%s; holds %d of the %d rows the cut-off writer saw acknowledged (the last: %v)",
		pos, readOnly, semi, len(held), len(acked), held[max(0, len(held)-3):])
}
