package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mysos-project/mysos/pkg/devcluster"
)

// The cluster tests run the test binary itself as the executor: with
// envExecutorMode set, TestMain runs Main (exactly what
// cmd/mysos-executor does) instead of the tests, after writing its pid to
// envPidFile.
const (
	envExecutorMode = "MYSOS_EXECUTOR_TEST_MODE"
	envPidFile      = "MYSOS_EXECUTOR_TEST_PIDFILE"
)

func TestMain(m *testing.M) {
	if os.Getenv(envExecutorMode) == "1" {
		if f := os.Getenv(envPidFile); f != "" {
			if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := Main(ctx, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type clusterEnv struct {
	t       *testing.T
	c       *devcluster.Cluster
	s       *testScheduler
	agentID string
	workDir string
	pidDir  string
	exe     string
}

func startCluster(t *testing.T) *clusterEnv {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	workDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := devcluster.Start(ctx, devcluster.Config{
		Listen: "127.0.0.1:0", Agents: 1, WorkDir: workDir,
		Timeouts: devcluster.FastTimeouts(), Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("MYSOS_EXECUTOR_TEST_LOGS") != "" {
			dumpExecutorLogs(t, workDir)
		}
	})
	s := newTestScheduler(t, c.MasterURL())
	return &clusterEnv{t: t, c: c, s: s, agentID: c.Agents()[0].ID, workDir: workDir, pidDir: t.TempDir(), exe: exe}
}

// dumpExecutorLogs logs the stderr of every executor sandbox under workDir.
func dumpExecutorLogs(t *testing.T, workDir string) {
	_ = filepath.WalkDir(workDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "stderr" {
			if b, err := os.ReadFile(path); err == nil {
				t.Logf("%s:\n%s", path, b)
			}
		}
		return nil
	})
}

func scalar(name string, v float64) mesos.Resource {
	role := "mysos"
	return mesos.Resource{
		Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v},
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: &role},
	}
}

const volumeID = "mysos-vol-1"

func reservedDisk(mb float64) mesos.Resource {
	r := scalar("disk", mb)
	role, principal := "mysos", "mysos-principal"
	r.Reservations = []mesos.Resource_ReservationInfo{{
		Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: &role, Principal: &principal,
	}}
	return r
}

func volume(mb float64) mesos.Resource {
	r := reservedDisk(mb)
	principal := "mysos-principal"
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: volumeID, Principal: &principal},
		Volume:      &mesos.Volume{ContainerPath: "data", Mode: mesos.RW.Enum()},
	}
	return r
}

func hasVolume(o *mesos.Offer) bool {
	for _, r := range o.Resources {
		if r.GetDisk().GetPersistence().GetID() == volumeID {
			return true
		}
	}
	return false
}

// task is a task of its own executor (the test binary in executor mode)
// with the given data and labels.
func (env *clusterEnv) task(id, data string, labels map[string]string, rs ...mesos.Resource) mesos.TaskInfo {
	no := false
	execID := "exec-" + id
	ti := mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: env.agentID},
		Resources: append([]mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)}, rs...),
		Executor: &mesos.ExecutorInfo{
			ExecutorID: mesos.ExecutorID{Value: execID},
			Type:       mesos.ExecutorInfo_CUSTOM,
			Resources:  []mesos.Resource{scalar("cpus", 0.1), scalar("mem", 32)},
			Command: &mesos.CommandInfo{
				Value: &env.exe, Shell: &no, Arguments: []string{env.exe},
				Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{
					envVar(envExecutorMode, "1"),
					envVar(envPidFile, filepath.Join(env.pidDir, execID)),
				}},
			},
		},
	}
	if data != "" {
		ti.Data = []byte(data)
	}
	if len(labels) > 0 {
		ti.Labels = &mesos.Labels{}
		for k, v := range labels {
			ti.Labels.Labels = append(ti.Labels.Labels, mesos.Label{Key: k, Value: &v})
		}
	}
	return ti
}

func envVar(k, v string) mesos.Environment_Variable {
	return mesos.Environment_Variable{Name: k, Value: &v}
}

func launch(tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}
}

// pid is the executor process of execID, as it wrote it.
func (env *clusterEnv) pid(execID string) int {
	env.t.Helper()
	b, err := os.ReadFile(filepath.Join(env.pidDir, execID))
	if err != nil {
		env.t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		env.t.Fatal(err)
	}
	return pid
}

// processGone says whether pid no longer runs (exited, or a zombie).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("executor process %d still runs after %v", pid, testDeadline)
		}
		<-tick.C
	}
}

func (env *clusterEnv) waitExecutorExit(from int, execID string) int32 {
	env.t.Helper()
	_, ev := env.s.waitFor(from, "FAILURE of "+execID, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_FAILURE && e.Failure.GetExecutorID().GetValue() == execID
	})
	return ev.Failure.GetStatus()
}

func checkExecutorStatus(t *testing.T, st mesos.TaskStatus, execID string) {
	t.Helper()
	if st.GetSource() != mesos.SOURCE_EXECUTOR || st.GetExecutorID().GetValue() != execID || len(st.UUID) != 16 || st.GetTimestamp() == 0 {
		t.Fatalf("update not from the executor: %+v", st)
	}
}

// A hold task goes STARTING → RUNNING; KILL ends it with TASK_KILLED and the
// executor exits 0.
func TestClusterLaunchAndKill(t *testing.T) {
	env := startCluster(t)
	from, offer := env.s.offer(0, func(*mesos.Offer) bool { return true })
	env.s.accept(offer.ID, launch(env.task("t1", `{"workload":"hold"}`, nil)))
	i, st := env.s.update(from, "t1", mesos.TASK_STARTING)
	checkExecutorStatus(t, st, "exec-t1")
	_, st = env.s.update(i, "t1", mesos.TASK_RUNNING)
	checkExecutorStatus(t, st, "exec-t1")
	pid := env.pid("exec-t1")

	from = env.s.mark()
	env.s.kill("t1", env.agentID)
	_, st = env.s.update(from, "t1", mesos.TASK_KILLED)
	checkExecutorStatus(t, st, "exec-t1")
	if status := env.waitExecutorExit(from, "exec-t1"); status != 0 {
		t.Fatalf("executor exit status %d", status)
	}
	waitGone(t, pid)
	if got := env.s.states(0, "t1"); len(got) != 3 {
		t.Fatalf("updates of t1: %v", got)
	}
}

// A task naming an unknown workload (here through the label) fails with a
// message naming the known ones.
func TestClusterUnknownWorkload(t *testing.T) {
	env := startCluster(t)
	from, offer := env.s.offer(0, func(*mesos.Offer) bool { return true })
	env.s.accept(offer.ID, launch(env.task("t1", "", map[string]string{WorkloadLabel: "nope"})))
	_, st := env.s.update(from, "t1", mesos.TASK_FAILED)
	checkExecutorStatus(t, st, "exec-t1")
	if msg := st.GetMessage(); !strings.Contains(msg, `unknown workload "nope"`) || !strings.Contains(msg, "hold") {
		t.Fatalf("message %q", msg)
	}
	if status := env.waitExecutorExit(from, "exec-t1"); status != 0 {
		t.Fatalf("executor exit status %d", status)
	}
}

// The hold workload counts its starts in its persistent volume: RESERVE,
// CREATE and LAUNCH in one ACCEPT, then a relaunch on the same volume.
func TestClusterHoldVolumeRelaunch(t *testing.T) {
	env := startCluster(t)
	file := filepath.Join(env.workDir, "agent-1", "volumes", "roles", "mysos", volumeID, HoldFile)
	from, offer := env.s.offer(0, func(*mesos.Offer) bool { return true })
	env.s.accept(offer.ID,
		mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{
			Resources: []mesos.Resource{reservedDisk(64)}}},
		mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{
			Volumes: []mesos.Resource{volume(64)}}},
		launch(env.task("t1", `{"workload":"hold"}`, nil, volume(64))),
	)
	env.s.update(from, "t1", mesos.TASK_RUNNING)
	if rec, err := ReadHoldFile(file); err != nil || rec != (HoldRecord{TaskID: "t1", Starts: 1}) {
		t.Fatalf("hold file after the first start: %+v, %v", rec, err)
	}
	from = env.s.mark()
	env.s.kill("t1", env.agentID)
	env.s.update(from, "t1", mesos.TASK_KILLED)

	_, offer = env.s.offer(from, hasVolume)
	from = env.s.mark()
	env.s.accept(offer.ID, launch(env.task("t2", "", map[string]string{WorkloadLabel: "hold"}, volume(64))))
	env.s.update(from, "t2", mesos.TASK_RUNNING)
	if rec, err := ReadHoldFile(file); err != nil || rec != (HoldRecord{TaskID: "t2", Starts: 2}) {
		t.Fatalf("hold file after the relaunch: %+v, %v", rec, err)
	}
}

// After an agent restart the executor re-subscribes and its task keeps
// running: no terminal update, the same process, and a KILL still reaches
// it.
func TestClusterAgentRestart(t *testing.T) {
	env := startCluster(t)
	from, offer := env.s.offer(0, func(*mesos.Offer) bool { return true })
	env.s.accept(offer.ID, launch(env.task("t1", `{"workload":"hold"}`, nil)))
	env.s.update(from, "t1", mesos.TASK_RUNNING)
	pid := env.pid("exec-t1")

	restart := env.s.mark()
	if err := env.c.RestartAgent(0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	if err := env.c.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	// The KILL goes through the re-subscribed stream; it is repeated in
	// case the agent was still recovering when the first arrived.
	var killed *scheduler.Event
	for deadline := time.Now().Add(testDeadline); killed == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("no TASK_KILLED after the agent restart; events: %s", env.s.describe(restart))
		}
		env.s.kill("t1", env.agentID)
		_, killed = env.s.waitForWithin(restart, time.Second, func(e *scheduler.Event) bool {
			return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == "t1" && isTerminal(e.Update.Status.GetState())
		})
	}
	st := killed.Update.Status
	if st.GetState() != mesos.TASK_KILLED {
		t.Fatalf("first terminal update after the restart: %s %s %q; events: %s", st.GetState(), st.GetReason(), st.GetMessage(), env.s.describe(restart))
	}
	checkExecutorStatus(t, st, "exec-t1")
	if got := env.pid("exec-t1"); got != pid {
		t.Fatalf("executor pid %d, was %d", got, pid)
	}
	waitGone(t, pid)
}

// Closing the cluster leaves no executor process behind.
func TestClusterCloseLeavesNoExecutor(t *testing.T) {
	env := startCluster(t)
	from, offer := env.s.offer(0, func(*mesos.Offer) bool { return true })
	env.s.accept(offer.ID, launch(env.task("t1", `{"workload":"hold"}`, nil)))
	env.s.update(from, "t1", mesos.TASK_RUNNING)
	pid := env.pid("exec-t1")
	env.s.close()
	env.c.Close()
	waitGone(t, pid)
}
