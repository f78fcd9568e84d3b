package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// commit the server acknowledged. spec is "endpoint user password first".
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
			if out.Flush() != nil {
				return 0
			}
		} else {
			<-pace.C
		}
	}
}

// nsWriter is a runWriter process inside a namespace, and what it printed.
type nsWriter struct {
	mu    sync.Mutex
	acked []int
	at    []time.Time
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
			if _, err := fmt.Sscanf(sc.Text(), "ACK %d %d", &id, &nanos); err == nil {
				w.mu.Lock()
				w.acked, w.at = append(w.acked, id), append(w.at, time.Unix(0, nanos))
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
	waitReady(t, s)
	host.waitAcked(t, 5)
	// Once healed, an acknowledgement a replica sent before its fence (its
	// TCP segment retransmitted by the kernel after the IO thread stopped)
	// may still reach the old primary and release a waiting commit. Such a
	// write is in that replica's relay log, so the failover kept it:
	// checkNoLoss finds every write the cut-off client saw acknowledged,
	// these included, on the new primary and every replica.
	late := inside.ackedAfter(fenced)
	checkNoLoss(t, s, append(host.ackedIDs(), inside.ids()...), adminPW)
	t.Logf("%d writes acknowledged from the host, %d from inside the cut agent (%d of them once healed, all kept)",
		len(host.ackedIDs()), len(inside.ids()), len(late))
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
