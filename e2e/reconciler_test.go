package e2e

// End-to-end tests of the reconciler on a Mesos-compatible dev cluster: a
// real mysos-scheduler launches one mysos-executor task ("hold" workload) per
// instance, on a labelled dynamic reservation with a persistent volume, and
// keeps them through scaling, executor crashes, its own crashes, a standby
// taking over and a master restart; deletion gives everything back.
//
// What the tests look at, besides mysosctl's view of the cluster:
//   - the leading dev master's /master/state: the framework's non-terminal
//     tasks and each agent's checkpointed resources (reservations, volumes);
//   - each dev agent's /state: the executors it ever ran for the framework,
//     its own checkpointed resources and its work dir, under which a
//     persistent volume is volumes/roles/<role>/<persistence id> holding the
//     hold workload's mysos-hold.txt;
//   - /proc: the processes whose environment carries the framework's
//     MESOS_FRAMEWORK_ID, by MESOS_EXECUTOR_ID, to find orphaned executors.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/executor"
	"github.com/mysos-project/mysos/pkg/spec"
)

// What the contract says each instance gets, for the manifests below.
const (
	mysosRole           = "mysos" // spec.placement.role's default
	labelInstance       = "mysos.io/instance"
	labelClusterUID     = "mysos.io/cluster-uid"
	labelPersistenceID  = "mysos.io/persistence-id"
	volumeContainerPath = "data"

	// spec.resources of every manifest here (the smallest the spec accepts).
	instanceCPUs   = 0.1 // 100m
	instanceMemMiB = 128 // 128Mi
	instanceDisk   = 256 // 256Mi
	// The executor's overhead, reserved with the instance's resources.
	executorCPUs   = 0.1
	executorMemMiB = 32

	convergeTimeout = 60 * time.Second
)

// ---------------------------------------------------------------------------
// The tests.

// TestClusterLifecycleOnMesos: apply 3 → 3 tasks on 3 agents, each with a
// volume; scale to 5 → 5 agents, the first three untouched; scale to 2 →
// ordinals 0 and 1 remain, the others' volumes and reservations are given
// back; an executor killed → its instance relaunched on the same agent and
// volume; delete → nothing left on the master, the agents or the host.
func TestClusterLifecycleOnMesos(t *testing.T) {
	t.Parallel()
	c := startDevCluster(t, 5)
	s := startMesosScheduler(t, c, nil)
	fw := waitSubscribed(t, s, c)
	const name = "lifecycle"

	var three, five, two map[int]instanceView
	var uid string
	if !t.Run("Apply3", func(t *testing.T) {
		applyReplicas(t, s, name, 3)
		// A new cluster is Pending or Creating until it runs; it has not run,
		// so it cannot be Degraded, and nothing here makes it Failed.
		waitUntil(t, convergeTimeout, name+" to say Running", func() error {
			cv, found, err := getClusterView(s, name)
			switch {
			case err != nil:
				return err
			case !found:
				return fmt.Errorf("cluster %s not found", name)
			}
			switch cv.Status.Phase {
			case spec.PhaseRunning:
				return nil
			case "", spec.PhasePending, spec.PhaseCreating:
				return fmt.Errorf("phase %q", cv.Status.Phase)
			}
			t.Fatalf("a new cluster went %s before it ran: %+v", cv.Status.Phase, cv.Status)
			return nil
		})
		cv, insts := waitRunning(t, s, c, fw, name, 3, nil)
		uid = cv.Metadata.UID
		checkPlacement(t, c, fw, name, uid, insts, map[int]int{0: 1, 1: 1, 2: 1})
		expectLaunched(t, c, fw, taskIDs(insts))
		checkExecutorProcesses(t, fw, taskIDs(insts))
		three = insts
	}) {
		return
	}

	if !t.Run("ScaleTo5", func(t *testing.T) {
		applyReplicas(t, s, name, 5)
		_, insts := waitRunning(t, s, c, fw, name, 5, nil)
		expectUntouched(t, three, insts, 0, 1, 2)
		checkPlacement(t, c, fw, name, uid, insts, map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1})
		expectLaunched(t, c, fw, taskIDs(insts))
		checkExecutorProcesses(t, fw, taskIDs(insts))
		five = insts
	}) {
		return
	}

	if !t.Run("ScaleTo2", func(t *testing.T) {
		applyReplicas(t, s, name, 2)
		removed := []instanceView{five[2], five[3], five[4]}
		_, insts := waitRunning(t, s, c, fw, name, 2, func(_ clusterView, mv masterView) error {
			// The master applied DESTROY and UNRESERVE for every removed instance.
			for _, gone := range removed {
				if rs := instanceResources(mv.slave(gone.AgentID).Checkpointed, gone); len(rs) > 0 {
					return fmt.Errorf("the master still has %d reserved resources of removed instance %s on its agent", len(rs), gone.Name)
				}
			}
			return nil
		})
		expectUntouched(t, five, insts, 0, 1)
		checkPlacement(t, c, fw, name, uid, insts, map[int]int{0: 1, 1: 1})
		// The agents of the removed instances hold nothing for the role any
		// more (no other instance lives there: one per agent), and the volume
		// directories are gone from their disks.
		waitUntil(t, 15*time.Second, "the released agents to hold no reservation nor volume", func() error {
			mv, err := fetchMasterState(c)
			if err != nil {
				return err
			}
			for _, gone := range removed {
				if rs := roleResources(mv.slave(gone.AgentID).Checkpointed); len(rs) > 0 {
					return fmt.Errorf("master: agent %s of removed %s still has %s", gone.AgentID, gone.Name, describeResources(rs))
				}
				av, err := fetchAgentStateByID(c, gone.AgentID)
				if err != nil {
					return err
				}
				if rs := roleResources(av.Checkpointed); len(rs) > 0 {
					return fmt.Errorf("agent %s of removed %s still checkpoints %s", gone.AgentID, gone.Name, describeResources(rs))
				}
				if _, err := os.Stat(av.volumeDir(gone.Volume)); !os.IsNotExist(err) {
					return fmt.Errorf("the volume directory of removed %s is still on agent %s (stat: %v)", gone.Name, gone.AgentID, err)
				}
			}
			return executorProcessesAre(fw, taskIDs(insts))
		})
		two = insts
	}) {
		return
	}

	if !t.Run("KilledExecutorRelaunchesOnTheSameAgentAndVolume", func(t *testing.T) {
		victim := two[0]
		if rec := readHold(t, c, victim); rec.Starts != 1 || rec.TaskID != victim.TaskID {
			t.Fatalf("before the kill, %s's hold file says %+v; want task %s, starts=1", victim.Name, rec, victim.TaskID)
		}
		if err := c.KillExecutor(agentIndex(t, c, victim.AgentID), fw, victim.TaskID); err != nil {
			t.Fatalf("kill the executor of %s: %v", victim.Name, err)
		}
		_, insts := waitRunning(t, s, c, fw, name, 2, func(cv clusterView, _ masterView) error {
			if id := cv.instance(victim.Name).TaskID; id == victim.TaskID {
				return fmt.Errorf("%s still has its killed task %s", victim.Name, id)
			}
			return nil
		})
		again := insts[0]
		if again.AgentID != victim.AgentID || again.Volume != victim.Volume {
			t.Fatalf("%s was relaunched on agent %s with volume %q; want agent %s and volume %q",
				victim.Name, again.AgentID, again.Volume, victim.AgentID, victim.Volume)
		}
		expectUntouched(t, two, insts, 1)
		checkPlacement(t, c, fw, name, uid, insts, map[int]int{0: 2, 1: 1})
		if agent := executorsLaunched(t, c, fw)[again.TaskID]; agent != victim.AgentID {
			t.Fatalf("the executor of the relaunched task %s ran on agent %q; want %s", again.TaskID, agent, victim.AgentID)
		}
		// Over the whole life of the cluster: the five first tasks and this
		// relaunch, nothing else.
		expectLaunched(t, c, fw, slices.Sorted(slices.Values(append(taskIDs(five), again.TaskID))))
		waitUntil(t, 15*time.Second, "only the current executors to run", func() error {
			return executorProcessesAre(fw, taskIDs(insts))
		})
	}) {
		return
	}

	t.Run("DeleteReleasesEverything", func(t *testing.T) {
		mustRun(t, s, "delete", "clusters", name)
		if out := mustRun(t, s, "wait", "clusters/"+name, "--for=delete", "--timeout=60s"); !strings.Contains(out, "deleted") {
			t.Fatalf("wait --for=delete printed %q", out)
		}
		if r := s.ctl("get", "clusters", name); r.code == 0 || !strings.Contains(r.stderr, "not found") {
			t.Fatalf("get after the deletion finished: exit %d %s", r.code, r.stderr)
		}
		// The cluster disappears only once its tasks are gone and its
		// reservations given back: the master already knows.
		mv, err := fetchMasterState(c)
		if err != nil {
			t.Fatal(err)
		}
		if tasks := mv.liveTasks(fw); len(tasks) > 0 {
			t.Fatalf("the master still has non-terminal tasks of the framework after the deletion: %v", describeTasks(tasks))
		}
		for _, sl := range mv.Slaves {
			if rs := append(roleResources(sl.Checkpointed), volumes(sl.Checkpointed)...); len(rs) > 0 {
				t.Fatalf("the master still has on agent %s (%s): %s", sl.ID, sl.Hostname, describeResources(rs))
			}
		}
		waitUntil(t, 15*time.Second, "the agents to hold no reservation, volume or executor", func() error {
			for _, a := range c.Agents() {
				av, err := fetchAgentState(a)
				if err != nil {
					return err
				}
				if rs := append(roleResources(av.Checkpointed), volumes(av.Checkpointed)...); len(rs) > 0 {
					return fmt.Errorf("agent %s still checkpoints %s", a.Hostname, describeResources(rs))
				}
				if left, _ := os.ReadDir(filepath.Join(av.Flags.WorkDir, "volumes", "roles", mysosRole)); len(left) > 0 {
					return fmt.Errorf("agent %s still has %d volume directories for role %s", a.Hostname, len(left), mysosRole)
				}
				if live := av.liveExecutors(fw); len(live) > 0 {
					return fmt.Errorf("agent %s still runs executors %v", a.Hostname, live)
				}
			}
			return executorProcessesAre(fw, nil)
		})
	})
}

// TestSchedulerRestartKeepsTasks: a scheduler killed with SIGKILL and started
// again resumes the same framework and adopts the running tasks: no task is
// relaunched, none added, no executor orphaned; and it goes on managing the
// cluster (a scale-up after the restart launches exactly one more task).
func TestSchedulerRestartKeepsTasks(t *testing.T) {
	t.Parallel()
	c := startDevCluster(t, 4)
	s := startMesosScheduler(t, c, nil)
	fw := waitSubscribed(t, s, c)
	const name = "restart"
	applyReplicas(t, s, name, 3)
	_, before := waitRunning(t, s, c, fw, name, 3, nil)
	original := taskIDs(before)

	s.kill9()
	waitUntil(t, 15*time.Second, "the master to see the framework disconnected", func() error {
		if ids := activeFrameworks(c); len(ids) > 0 {
			return fmt.Errorf("connected frameworks %v", ids)
		}
		return nil
	})
	// The tasks do not depend on the scheduler process.
	expectMasterTasks(t, c, fw, original)

	s.start()
	waitResubscribed(t, s, c, fw)
	expectResumed(t, s, c, fw, name, before)
	if n := len(c.Master().Frameworks()); n != 1 {
		t.Fatalf("the master knows %d frameworks; want the one the scheduler resumed", n)
	}
}

// TestStandbySchedulerTakesOver: two schedulers share one etcd and one
// master; only the leader subscribes. Killing the leader with SIGKILL lets the
// standby take over within the lease's lifetime, as the same framework, with
// the tasks untouched, and a scale change applied through it works.
func TestStandbySchedulerTakesOver(t *testing.T) {
	t.Parallel()
	etcd := testutil.ExternalEtcd(t)
	c := startDevCluster(t, 4)
	// Both within this test: startScheduler derives --etcd-prefix from t.Name().
	first := startMesosScheduler(t, c, etcd)
	second := startMesosScheduler(t, c, etcd)

	var leader, standby *scheduler
	waitUntil(t, 30*time.Second, "one scheduler to lead and the other to stand by", func() error {
		var err error
		leader, standby, err = leaderAndStandby(first, second)
		return err
	})
	fw := waitSubscribed(t, leader, c)
	if n := len(c.Master().Frameworks()); n != 1 {
		t.Fatalf("the master knows %d frameworks; want 1 (the standby must not subscribe)", n)
	}

	const name = "takeover"
	applyReplicas(t, leader, name, 3)
	_, before := waitRunning(t, leader, c, fw, name, 3, nil)

	leader.kill9()
	// The leader's lease (10 s) has to expire before the standby may lead.
	waitUntil(t, 30*time.Second, "the standby to take over the framework", func() error {
		if body := standby.readyz(); !strings.Contains(body, "[+]mesos ok") {
			return fmt.Errorf("standby /readyz:\n%s", body)
		}
		if ids := activeFrameworks(c); len(ids) != 1 || ids[0] != fw {
			return fmt.Errorf("connected frameworks %v; want [%s]", ids, fw)
		}
		return nil
	})
	if n := len(c.Master().Frameworks()); n != 1 {
		t.Fatalf("the master knows %d frameworks after the takeover; want 1", n)
	}
	expectResumed(t, standby, c, fw, name, before)
}

// TestMasterRestartReconciles: after the dev master restarts (a fresh master
// that knows only its registry), the scheduler re-subscribes as the same
// framework and the tasks, which the agents report again, keep running with
// the same ids in the master's view and in the cluster's status; the
// scheduler then launches on the new master's offers without touching them.
func TestMasterRestartReconciles(t *testing.T) {
	t.Parallel()
	c := startDevCluster(t, 4)
	s := startMesosScheduler(t, c, nil)
	fw := waitSubscribed(t, s, c)
	const name = "masterrestart"
	applyReplicas(t, s, name, 3)
	_, before := waitRunning(t, s, c, fw, name, 3, nil)
	masterID := c.Master().ID()

	if err := c.RestartMaster(); err != nil {
		t.Fatalf("restart the master: %v", err)
	}
	if c.Master().ID() == masterID {
		t.Fatal("RestartMaster kept the old master")
	}
	waitResubscribed(t, s, c, fw)
	if n := len(c.Master().Frameworks()); n != 1 {
		t.Fatalf("the new master knows %d frameworks; want 1", n)
	}
	// The new master learnt the reservations from the agents.
	expectResumed(t, s, c, fw, name, before)
}

// expectResumed checks, after a scheduler or master restart, that the three
// instances in before still run the same tasks, then that the scheduler
// still manages the cluster: a fourth instance is launched, the others are
// untouched, and nothing is reserved twice for them.
func expectResumed(t testing.TB, s *scheduler, c *devcluster.Cluster, fw, name string, before map[int]instanceView) {
	t.Helper()
	original := taskIDs(before)
	_, after := waitRunning(t, s, c, fw, name, 3, nil)
	expectUntouched(t, before, after, 0, 1, 2)
	expectMasterTasks(t, c, fw, original)
	expectLaunched(t, c, fw, original)
	checkExecutorProcesses(t, fw, original)

	applyReplicas(t, s, name, 4)
	cv, four := waitRunning(t, s, c, fw, name, 4, nil)
	expectUntouched(t, before, four, 0, 1, 2)
	expectLaunched(t, c, fw, taskIDs(four))
	checkExecutorProcesses(t, fw, taskIDs(four))
	checkPlacement(t, c, fw, name, cv.Metadata.UID, four, map[int]int{0: 1, 1: 1, 2: 1, 3: 1})
}

// ---------------------------------------------------------------------------
// Scheduler and mysosctl.

// startMesosScheduler starts a scheduler on the dev cluster's master with the
// mysos-executor TestMain built; etcd nil means the embedded one.
// The reconciler's tests run the executor's hold workload: tasks without
// mysqld, so that launching, relaunching and releasing are tested on their own.
func startMesosScheduler(t testing.TB, c *devcluster.Cluster, etcd []string, extra ...string) *scheduler {
	t.Helper()
	args := []string{"--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"), "--executor-workload", "hold"}
	return startScheduler(t, etcd, append(args, extra...)...)
}

// kill9 kills the scheduler with SIGKILL, as a crash would: nothing of its
// shutdown runs; its etcd lease and Mesos subscription are just abandoned.
// start runs it again on the same data dir and flags.
func (s *scheduler) kill9() {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatal("kill9: the scheduler does not run")
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill9: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatal("the scheduler did not exit within 30s of SIGKILL")
	}
	s.cmd = nil
	killed := s.log // start replaces it
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("log of the scheduler killed with SIGKILL:\n%s", killed)
		}
	})
}

// mustRun runs mysosctl against s and fails t unless it exits 0.
func mustRun(t testing.TB, s *scheduler, args ...string) string {
	t.Helper()
	r := s.ctl(args...)
	if r.code != 0 {
		t.Fatalf("mysosctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// clusterManifest is a small cluster: every dev agent fits several.
func clusterManifest(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: %s
spec:
  replicas: %d
  resources:
    cpus: 100m
    mem: 128Mi
    disk: 256Mi
`, name, replicas)
}

// applyReplicas applies the cluster with that many replicas.
func applyReplicas(t testing.TB, s *scheduler, name string, replicas int) {
	t.Helper()
	path := writeFile(t, t.TempDir(), name+".yaml", clusterManifest(name, replicas))
	out := mustRun(t, s, "apply", "-f", path)
	ref := "mysqlcluster.mysos.io/" + name
	if !strings.Contains(out, ref+" created") && !strings.Contains(out, ref+" configured") {
		t.Fatalf("apply of %d replicas changed nothing:\n%s", replicas, out)
	}
}

// waitSubscribed waits for s to subscribe and returns the framework id: the
// one framework connected to the master.
func waitSubscribed(t testing.TB, s *scheduler, c *devcluster.Cluster) string {
	t.Helper()
	var id string
	waitUntil(t, 30*time.Second, "the scheduler to subscribe", func() error {
		if body := s.readyz(); !strings.Contains(body, "[+]mesos ok") {
			return fmt.Errorf("/readyz:\n%s", body)
		}
		ids := activeFrameworks(c)
		if len(ids) != 1 {
			return fmt.Errorf("connected frameworks %v; want one", ids)
		}
		id = ids[0]
		return nil
	})
	return id
}

// waitResubscribed waits for s to subscribe again as framework fw.
func waitResubscribed(t testing.TB, s *scheduler, c *devcluster.Cluster, fw string) {
	t.Helper()
	waitUntil(t, convergeTimeout, "the scheduler to re-subscribe as "+fw, func() error {
		if body := s.readyz(); !strings.Contains(body, "[+]mesos ok") {
			return fmt.Errorf("/readyz:\n%s", body)
		}
		if ids := activeFrameworks(c); len(ids) != 1 || ids[0] != fw {
			return fmt.Errorf("connected frameworks %v; want [%s]", ids, fw)
		}
		return nil
	})
}

// leaderAndStandby tells, from /readyz, which of two schedulers leads.
func leaderAndStandby(a, b *scheduler) (leader, standby *scheduler, err error) {
	ra, rb := a.readyz(), b.readyz()
	leads := func(body string) bool { return strings.Contains(body, "[+]mesos ok") }
	stands := func(body string) bool { return strings.Contains(body, "standby") && !leads(body) }
	switch {
	case leads(ra) && stands(rb):
		return a, b, nil
	case leads(rb) && stands(ra):
		return b, a, nil
	}
	return nil, nil, fmt.Errorf("no clear leader:\nfirst /readyz:\n%s\nsecond /readyz:\n%s", ra, rb)
}

// waitUntil is testutil.WaitFor for a condition that says why it does not
// hold yet; the last reason is logged if it never does.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	var last error
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("last observation while waiting for %s: %v", what, last)
		}
	}()
	testutil.WaitFor(t, timeout, what, func() bool {
		last = cond()
		return last == nil
	})
}

// ---------------------------------------------------------------------------
// The cluster as mysosctl shows it. Decoded into local types so that fields
// the reconciler adds (status.instances[].volume) need not exist in pkg/spec.

type clusterView struct {
	Metadata struct {
		UID        string `json:"uid"`
		Generation int64  `json:"generation"`
	} `json:"metadata"`
	Spec struct {
		Replicas int `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Phase              spec.Phase       `json:"phase"`
		ObservedGeneration int64            `json:"observedGeneration"`
		Conditions         []spec.Condition `json:"conditions"`
		Instances          []instanceView   `json:"instances"`
	} `json:"status"`
}

type instanceView struct {
	Name    string `json:"name"`
	TaskID  string `json:"taskId"`
	AgentID string `json:"agentId"`
	Host    string `json:"host"`
	Port    int32  `json:"port"`
	State   string `json:"state"`
	Volume  string `json:"volume"`

	// key is "<namespace>/<cluster>/<ordinal>", the value of its
	// reservations' mysos.io/instance label (set by waitRunning).
	key string
}

func (cv clusterView) instance(name string) instanceView {
	for _, in := range cv.Status.Instances {
		if in.Name == name {
			return in
		}
	}
	return instanceView{}
}

// getClusterView runs `get clusters NAME -o json`; found is false once the
// cluster is gone.
func getClusterView(s *scheduler, name string) (cv clusterView, found bool, err error) {
	r := s.ctl("get", "clusters", name, "-o", "json")
	if r.code != 0 {
		if strings.Contains(r.stderr, "not found") {
			return cv, false, nil
		}
		return cv, false, fmt.Errorf("get clusters %s: exit %d: %s", name, r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &cv); err != nil {
		return cv, false, fmt.Errorf("decode get output: %v\n%s", err, r.stdout)
	}
	return cv, true, nil
}

// waitRunning waits until the cluster has converged on n running instances:
// status Running with Ready=True for its current generation, instances
// name-0..name-(n-1) TASK_RUNNING, and the master knows exactly their tasks
// (no more), all TASK_RUNNING; extra, when set, must hold too. It returns the
// instances by ordinal.
//
// On every observation it also holds the status to its word: a status that
// describes the current generation and says Running must show every
// instance of the spec TASK_RUNNING.
func waitRunning(t testing.TB, s *scheduler, c *devcluster.Cluster, fw, name string, n int,
	extra func(clusterView, masterView) error) (clusterView, map[int]instanceView) {
	t.Helper()
	var cv clusterView
	var insts map[int]instanceView
	waitUntil(t, convergeTimeout, fmt.Sprintf("%s to run %d instances", name, n), func() error {
		var found bool
		var err error
		if cv, found, err = getClusterView(s, name); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("cluster %s not found", name)
		}
		if cv.Status.ObservedGeneration == cv.Metadata.Generation && cv.Status.Phase == spec.PhaseRunning {
			for i := range cv.Spec.Replicas {
				in := cv.instance(fmt.Sprintf("%s-%d", name, i))
				if in.State != mesos.TASK_RUNNING.String() {
					t.Fatalf("status says %s for generation %d, but instance %s-%d is %q:\n%+v",
						spec.PhaseRunning, cv.Metadata.Generation, name, i, in.State, cv.Status)
				}
			}
		}
		if cv.Spec.Replicas != n {
			return fmt.Errorf("spec.replicas %d", cv.Spec.Replicas)
		}
		if cv.Status.ObservedGeneration != cv.Metadata.Generation {
			return fmt.Errorf("status describes generation %d of %d", cv.Status.ObservedGeneration, cv.Metadata.Generation)
		}
		if cv.Status.Phase != spec.PhaseRunning {
			return fmt.Errorf("phase %q", cv.Status.Phase)
		}
		ready := findCondition(cv.Status.Conditions, spec.ConditionReady)
		if ready == nil || ready.Status != spec.ConditionTrue || ready.ObservedGeneration != cv.Metadata.Generation {
			return fmt.Errorf("condition Ready is %+v", ready)
		}
		if len(cv.Status.Instances) != n {
			return fmt.Errorf("%d instances in the status: %+v", len(cv.Status.Instances), cv.Status.Instances)
		}
		insts = map[int]instanceView{}
		for _, in := range cv.Status.Instances {
			i, err := strconv.Atoi(strings.TrimPrefix(in.Name, name+"-"))
			if err != nil || i < 0 || i >= n || in.Name != fmt.Sprintf("%s-%d", name, i) {
				return fmt.Errorf("unexpected instance name %q", in.Name)
			}
			if in.State != mesos.TASK_RUNNING.String() || in.TaskID == "" || in.AgentID == "" || in.Volume == "" {
				return fmt.Errorf("instance %+v", in)
			}
			in.key = fmt.Sprintf("%s/%s/%d", spec.DefaultNamespace, name, i)
			insts[i] = in
		}
		if len(insts) != n {
			return fmt.Errorf("instance names repeat: %+v", cv.Status.Instances)
		}
		mv, err := fetchMasterState(c)
		if err != nil {
			return err
		}
		tasks := mv.liveTasks(fw)
		if got, want := taskIDsOf(tasks), taskIDs(insts); !slices.Equal(got, want) {
			return fmt.Errorf("the master has tasks %v; the status %v", got, want)
		}
		for _, task := range tasks {
			if task.GetState() != mesos.TASK_RUNNING {
				return fmt.Errorf("the master has task %s in %s", task.TaskID.Value, task.GetState())
			}
		}
		if extra != nil {
			return extra(cv, mv)
		}
		return nil
	})
	return cv, insts
}

func findCondition(conds []spec.Condition, typ string) *spec.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// taskIDs are the instances' task ids, sorted.
func taskIDs(insts map[int]instanceView) []string {
	var ids []string
	for _, in := range insts {
		ids = append(ids, in.TaskID)
	}
	slices.Sort(ids)
	return ids
}

// expectUntouched fails unless the given ordinals kept their task, agent and
// volume from before to after.
func expectUntouched(t testing.TB, before, after map[int]instanceView, ordinals ...int) {
	t.Helper()
	for _, i := range ordinals {
		b, a := before[i], after[i]
		if a.TaskID != b.TaskID || a.AgentID != b.AgentID || a.Volume != b.Volume {
			t.Fatalf("instance %d changed: task %s→%s, agent %s→%s, volume %s→%s",
				i, b.TaskID, a.TaskID, b.AgentID, a.AgentID, b.Volume, a.Volume)
		}
	}
}

// checkPlacement checks the instances against the master's and the agents'
// views: one agent each, the task named after the instance on an executor of
// its own with its port and volume, the reservation labelled for it and
// sized as the spec plus the executor's overhead, and the hold file on its
// volume written by its current task, starts[ordinal] times.
func checkPlacement(t testing.TB, c *devcluster.Cluster, fw, name, uid string, insts map[int]instanceView, starts map[int]int) {
	t.Helper()
	mv, err := fetchMasterState(c)
	if err != nil {
		t.Fatal(err)
	}
	agents, volumes := map[string]string{}, map[string]string{}
	for i, in := range insts {
		if other, dup := agents[in.AgentID]; dup {
			t.Fatalf("%s and %s share agent %s: instances must be spread over agents", other, in.Name, in.AgentID)
		}
		agents[in.AgentID] = in.Name
		if other, dup := volumes[in.Volume]; dup {
			t.Fatalf("%s and %s share volume %s", other, in.Name, in.Volume)
		}
		volumes[in.Volume] = in.Name

		task := mv.task(fw, in.TaskID)
		if task == nil {
			t.Fatalf("the master does not know task %s of %s", in.TaskID, in.Name)
		}
		if task.Name != in.Name || task.AgentID.Value != in.AgentID || task.GetExecutorID().GetValue() != in.TaskID {
			t.Fatalf("task %s: name %q agent %s executor %q; want name %q, agent %s, executor id = task id",
				in.TaskID, task.Name, task.AgentID.Value, task.GetExecutorID().GetValue(), in.Name, in.AgentID)
		}
		slave := mv.slave(in.AgentID)
		if slave.ID == "" {
			t.Fatalf("the master does not know agent %s of %s", in.AgentID, in.Name)
		}
		if in.Host != slave.Hostname {
			t.Fatalf("%s: host %q; its agent is %q", in.Name, in.Host, slave.Hostname)
		}
		if !hasPort(task.Resources, in.Port) {
			t.Fatalf("%s: port %d is not among its task's resources: %s", in.Name, in.Port, describeResources(task.Resources))
		}
		if v := volumeOf(task.Resources); v == nil || v.GetDisk().GetPersistence().GetID() != in.Volume ||
			v.GetDisk().GetVolume().GetContainerPath() != volumeContainerPath {
			t.Fatalf("%s: its task does not use volume %q at %q: %s", in.Name, in.Volume, volumeContainerPath, describeResources(task.Resources))
		}

		// The reservation, as the master knows it.
		var mine mesos.Resources
		for _, r := range roleResources(slave.Checkpointed) {
			if reservationLabel(r, labelInstance) == in.key {
				mine = append(mine, r)
			}
		}
		for _, r := range mine {
			if got := reservationLabel(r, labelClusterUID); got != uid {
				t.Fatalf("%s: reservation %s has cluster uid %q; want %q", in.Name, describeResources([]mesos.Resource{r}), got, uid)
			}
			if got := reservationLabel(r, labelPersistenceID); got != in.Volume {
				t.Fatalf("%s: reservation %s has persistence id %q; want %q", in.Name, describeResources([]mesos.Resource{r}), got, in.Volume)
			}
		}
		sums := scalarSums(mine)
		if !near(sums["cpus"], instanceCPUs+executorCPUs) || !near(sums["mem"], instanceMemMiB+executorMemMiB) ||
			!near(sums["disk"], instanceDisk) || portCount(mine) != 1 {
			t.Fatalf("%s: reserved %s; want cpus %g, mem %g, disk %g and one port", in.Name, describeResources(mine),
				instanceCPUs+executorCPUs, float64(instanceMemMiB+executorMemMiB), float64(instanceDisk))
		}
		if v := volumeOf(mine); v == nil || v.GetDisk().GetPersistence().GetID() != in.Volume {
			t.Fatalf("%s: no persistent volume %q among its reservation: %s", in.Name, in.Volume, describeResources(mine))
		}

		// The agent has the volume too, with what the hold workload wrote.
		av, err := fetchAgentStateByID(c, in.AgentID)
		if err != nil {
			t.Fatal(err)
		}
		if !hasVolume(av.Checkpointed, in.Volume) {
			t.Fatalf("%s: agent %s does not checkpoint volume %q: %s", in.Name, in.AgentID, in.Volume, describeResources(av.Checkpointed))
		}
		if want, ok := starts[i]; ok {
			rec, err := executor.ReadHoldFile(filepath.Join(av.volumeDir(in.Volume), executor.HoldFile))
			if err != nil {
				t.Fatalf("%s: %v", in.Name, err)
			}
			if rec.TaskID != in.TaskID || rec.Starts != want {
				t.Fatalf("%s: the hold file on its volume says task %s, starts=%d; want task %s, starts=%d",
					in.Name, rec.TaskID, rec.Starts, in.TaskID, want)
			}
		}
	}
}

// readHold reads the hold file on an instance's volume.
func readHold(t testing.TB, c *devcluster.Cluster, in instanceView) executor.HoldRecord {
	t.Helper()
	av, err := fetchAgentStateByID(c, in.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := executor.ReadHoldFile(filepath.Join(av.volumeDir(in.Volume), executor.HoldFile))
	if err != nil {
		t.Fatalf("%s: %v", in.Name, err)
	}
	return rec
}

// expectMasterTasks fails unless the master's non-terminal tasks of fw are
// exactly ids, all TASK_RUNNING.
func expectMasterTasks(t testing.TB, c *devcluster.Cluster, fw string, ids []string) {
	t.Helper()
	mv, err := fetchMasterState(c)
	if err != nil {
		t.Fatal(err)
	}
	tasks := mv.liveTasks(fw)
	if got := taskIDsOf(tasks); !slices.Equal(got, ids) {
		t.Fatalf("the master has tasks %v; want %v", describeTasks(tasks), ids)
	}
	for _, task := range tasks {
		if task.GetState() != mesos.TASK_RUNNING {
			t.Fatalf("task %s is %s", task.TaskID.Value, task.GetState())
		}
	}
}

// expectLaunched fails unless the agents ran executors for exactly ids: no
// task was relaunched or added behind the status' back.
func expectLaunched(t testing.TB, c *devcluster.Cluster, fw string, ids []string) {
	t.Helper()
	launched := executorsLaunched(t, c, fw)
	if got := slices.Sorted(maps.Keys(launched)); !slices.Equal(got, ids) {
		t.Fatalf("the agents ran executors %v; want exactly %v", got, ids)
	}
}

// checkExecutorProcesses fails unless the live executor processes of fw are
// exactly those of ids.
func checkExecutorProcesses(t testing.TB, fw string, ids []string) {
	t.Helper()
	if err := executorProcessesAre(fw, ids); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The dev master's view: GET /master/state of the leading master.

type masterView struct {
	Frameworks []masterFramework `json:"frameworks"`
	Slaves     []masterSlave     `json:"slaves"`
}

type masterFramework struct {
	ID               string       `json:"id"`
	Connected        bool         `json:"connected"`
	Tasks            []mesos.Task `json:"tasks"`
	UnreachableTasks []mesos.Task `json:"unreachable_tasks"`
}

type masterSlave struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	// Checkpointed are the agent's dynamic reservations and volumes.
	Checkpointed []mesos.Resource `json:"checkpointed_full"`
}

var stateClient = &http.Client{Timeout: 5 * time.Second}

func getJSON(url string, v any) error {
	resp, err := stateClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: decode: %v", url, err)
	}
	return nil
}

func fetchMasterState(c *devcluster.Cluster) (masterView, error) {
	var mv masterView
	url := c.LeaderURL()
	if url == "" {
		return mv, errors.New("no master leads")
	}
	return mv, getJSON(url+"/master/state", &mv)
}

// liveTasks are fw's non-terminal tasks, reachable or not.
func (mv masterView) liveTasks(fw string) []mesos.Task {
	for _, f := range mv.Frameworks {
		if f.ID == fw {
			return append(slices.Clone(f.Tasks), f.UnreachableTasks...)
		}
	}
	return nil
}

func (mv masterView) task(fw, id string) *mesos.Task {
	for _, task := range mv.liveTasks(fw) {
		if task.TaskID.Value == id {
			return &task
		}
	}
	return nil
}

func (mv masterView) slave(id string) masterSlave {
	for _, s := range mv.Slaves {
		if s.ID == id {
			return s
		}
	}
	return masterSlave{}
}

func taskIDsOf(tasks []mesos.Task) []string {
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.TaskID.Value)
	}
	slices.Sort(ids)
	return ids
}

func describeTasks(tasks []mesos.Task) []string {
	var out []string
	for _, task := range tasks {
		out = append(out, fmt.Sprintf("%s(%s on %s, %s)", task.TaskID.Value, task.Name, task.AgentID.Value, task.GetState()))
	}
	return out
}

// ---------------------------------------------------------------------------
// A dev agent's view: GET /state of the agent.

type agentView struct {
	ID           string           `json:"id"`
	Hostname     string           `json:"hostname"`
	Checkpointed []mesos.Resource `json:"checkpointed_resources"`
	Flags        struct {
		WorkDir string `json:"work_dir"`
	} `json:"flags"`
	Frameworks          []agentFramework `json:"frameworks"`
	CompletedFrameworks []agentFramework `json:"completed_frameworks"`
}

type agentFramework struct {
	ID                 string          `json:"id"`
	Executors          []agentExecutor `json:"executors"`
	CompletedExecutors []agentExecutor `json:"completed_executors"`
}

type agentExecutor struct {
	ID    string `json:"id"`
	State string `json:"state"`
	PID   int    `json:"pid"`
}

func fetchAgentState(a devcluster.AgentSummary) (agentView, error) {
	var av agentView
	if !a.Running {
		return av, fmt.Errorf("agent %s is stopped", a.Hostname)
	}
	return av, getJSON("http://"+a.Address+"/state", &av)
}

func fetchAgentStateByID(c *devcluster.Cluster, id string) (agentView, error) {
	for _, a := range c.Agents() {
		if a.ID == id {
			return fetchAgentState(a)
		}
	}
	return agentView{}, fmt.Errorf("no agent has id %s", id)
}

// agentIndex is the position of the agent with that id, for fault injection.
func agentIndex(t testing.TB, c *devcluster.Cluster, id string) int {
	t.Helper()
	for _, a := range c.Agents() {
		if a.ID == id {
			return a.Index
		}
	}
	t.Fatalf("no agent has id %s", id)
	return -1
}

// volumeDir is where the agent keeps a volume of Mysos' role.
func (av agentView) volumeDir(persistenceID string) string {
	return filepath.Join(av.Flags.WorkDir, "volumes", "roles", mysosRole, persistenceID)
}

// liveExecutors are fw's executors the agent has not seen terminate.
func (av agentView) liveExecutors(fw string) []string {
	var ids []string
	for _, f := range av.Frameworks {
		if f.ID != fw {
			continue
		}
		for _, ex := range f.Executors {
			if ex.State != "TERMINATED" {
				ids = append(ids, ex.ID)
			}
		}
	}
	return ids
}

// executorsLaunched maps every executor id any agent ran for fw, live or
// completed, to the agent's id.
func executorsLaunched(t testing.TB, c *devcluster.Cluster, fw string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range c.Agents() {
		av, err := fetchAgentState(a)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(slices.Clone(av.Frameworks), av.CompletedFrameworks...) {
			if f.ID != fw {
				continue
			}
			for _, ex := range append(slices.Clone(f.Executors), f.CompletedExecutors...) {
				if prev, dup := out[ex.ID]; dup && prev != av.ID {
					t.Fatalf("executor %s ran on agents %s and %s", ex.ID, prev, av.ID)
				}
				out[ex.ID] = av.ID
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Resources.

// roleResources are those reserved for Mysos' role.
func roleResources(rs []mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		reserved := r.Role != nil && *r.Role == mysosRole // the pre-1.4 format
		for _, ri := range r.Reservations {
			reserved = reserved || ri.GetRole() == mysosRole
		}
		if reserved {
			out = append(out, r)
		}
	}
	return out
}

// volumes are the persistent volumes among rs.
func volumes(rs []mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		if r.GetDisk().GetPersistence().GetID() != "" {
			out = append(out, r)
		}
	}
	return out
}

func volumeOf(rs []mesos.Resource) *mesos.Resource {
	if vs := volumes(rs); len(vs) > 0 {
		return &vs[0]
	}
	return nil
}

func hasVolume(rs []mesos.Resource, persistenceID string) bool {
	for _, v := range volumes(rs) {
		if v.GetDisk().GetPersistence().GetID() == persistenceID {
			return true
		}
	}
	return false
}

// instanceResources are the resources among rs that belong to in: labelled
// for it or for its volume, or its volume itself.
func instanceResources(rs []mesos.Resource, in instanceView) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		if reservationLabel(r, labelInstance) == in.key || reservationLabel(r, labelPersistenceID) == in.Volume ||
			r.GetDisk().GetPersistence().GetID() == in.Volume {
			out = append(out, r)
		}
	}
	return out
}

// reservationLabel is a label of r's reservation (the innermost one that
// has it), "" if none.
func reservationLabel(r mesos.Resource, key string) string {
	for i := len(r.Reservations) - 1; i >= 0; i-- {
		for _, l := range r.Reservations[i].GetLabels().GetLabels() {
			if l.Key == key {
				return l.GetValue()
			}
		}
	}
	for _, l := range r.GetReservation().GetLabels().GetLabels() {
		if l.Key == key {
			return l.GetValue()
		}
	}
	return ""
}

func scalarSums(rs []mesos.Resource) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		if r.Scalar != nil {
			out[r.Name] += r.Scalar.Value
		}
	}
	return out
}

func portCount(rs []mesos.Resource) int {
	n := 0
	for _, r := range rs {
		if r.Name == "ports" {
			for _, rg := range r.GetRanges().GetRange() {
				n += int(rg.End - rg.Begin + 1)
			}
		}
	}
	return n
}

func hasPort(rs []mesos.Resource, port int32) bool {
	for _, r := range rs {
		if r.Name != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			if port > 0 && rg.Begin <= uint64(port) && uint64(port) <= rg.End {
				return true
			}
		}
	}
	return false
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func describeResources(rs []mesos.Resource) string {
	var parts []string
	for _, r := range rs {
		var v string
		switch {
		case r.Scalar != nil:
			v = strconv.FormatFloat(r.Scalar.Value, 'f', -1, 64)
		case r.Ranges != nil:
			for _, rg := range r.Ranges.Range {
				v += fmt.Sprintf("[%d-%d]", rg.Begin, rg.End)
			}
		}
		var roles []string
		for _, ri := range r.Reservations {
			roles = append(roles, ri.GetRole())
		}
		p := fmt.Sprintf("%s(%s):%s", r.Name, strings.Join(roles, "/"), v)
		if inst := reservationLabel(r, labelInstance); inst != "" {
			p += " for " + inst
		}
		if id := r.GetDisk().GetPersistence().GetID(); id != "" {
			p += " volume " + id
		}
		parts = append(parts, p)
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// ---------------------------------------------------------------------------
// Executor processes.

// executorProcessesAre checks that the live processes started for framework
// fw (found in /proc by the MESOS_FRAMEWORK_ID every executor gets) belong to
// exactly the executors ids (sorted): none missing, none orphaned.
func executorProcessesAre(fw string, ids []string) error {
	procs, err := executorProcesses(fw)
	if err != nil {
		return err
	}
	if got := slices.Sorted(maps.Keys(procs)); !slices.Equal(got, ids) {
		return fmt.Errorf("executor processes of the framework run for %v (pids %v); want %v", got, procs, ids)
	}
	return nil
}

// executorProcesses maps MESOS_EXECUTOR_ID to the pids of the live processes
// whose environment names framework fw: the executors and anything they
// started.
func executorProcesses(fw string) (map[string][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Gone since the listing, a zombie (empty) or not ours to read.
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		var fwID, execID string
		for _, kv := range bytes.Split(env, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case "MESOS_FRAMEWORK_ID":
				fwID = v
			case "MESOS_EXECUTOR_ID":
				execID = v
			}
		}
		if fwID == fw && execID != "" {
			out[execID] = append(out[execID], pid)
		}
	}
	return out, nil
}
