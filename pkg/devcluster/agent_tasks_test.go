package devcluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Command tasks run under the built-in command executor: STARTING,
// RUNNING, then FINISHED / FAILED with Mesos' messages, or KILLED.
func TestAgentCommandTasks(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fm.setAutoAck(true)
	fw := testFramework("fw-1", false)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Tasks: []mesos.TaskInfo{
		commandTask("t-finish", "echo done"),
		commandTask("t-fail", "echo oops >&2; exit 3"),
		commandTask("t-sleep", "sleep 1000"),
	}})
	for _, id := range []string{"t-finish", "t-fail", "t-sleep"} {
		starting := fm.update(t, id, mesos.TASK_STARTING).Status
		if starting.GetSource() != mesos.SOURCE_EXECUTOR || starting.GetExecutorID().GetValue() != id ||
			starting.GetContainerStatus().GetContainerID().GetValue() == "" || len(starting.UUID) != 16 {
			t.Fatalf("bad TASK_STARTING %+v", starting)
		}
		fm.update(t, id, mesos.TASK_RUNNING)
	}
	fin := fm.update(t, "t-finish", mesos.TASK_FINISHED).Status
	if fin.GetMessage() != "Command exited with status 0" || fin.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Fatalf("bad TASK_FINISHED %+v", fin)
	}
	failed := fm.update(t, "t-fail", mesos.TASK_FAILED).Status
	if failed.GetMessage() != "Command exited with status 3" {
		t.Fatalf("bad TASK_FAILED %+v", failed)
	}
	// Output lands in the sandbox.
	out, err := os.ReadFile(filepath.Join(sandboxOf(t, ta, "fw-1", "t-finish"), "stdout"))
	if err != nil || string(out) != "done\n" {
		t.Fatalf("stdout %q %v", out, err)
	}
	fm.l.sendToAgent(msgKillTask{FrameworkID: *fw.ID, TaskID: mesos.TaskID{Value: "t-sleep"}})
	killed := fm.update(t, "t-sleep", mesos.TASK_KILLED).Status
	if killed.GetMessage() != "Command terminated with signal Terminated" {
		t.Fatalf("bad TASK_KILLED %+v", killed)
	}
	// Command executors never produce msgExitedExecutor.
	if n := len(fm.matching(func(m any) bool { _, ok := m.(msgExitedExecutor); return ok })); n != 0 {
		t.Fatalf("unexpected msgExitedExecutor")
	}
	// A command ignoring SIGTERM is killed after the grace period.
	task := commandTask("t-stubborn", "trap '' TERM; echo ready > ready; sleep 1000 & wait")
	task.KillPolicy = &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: 200e6}}
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Tasks: []mesos.TaskInfo{task}})
	fm.update(t, "t-stubborn", mesos.TASK_RUNNING)
	ready := filepath.Join(sandboxOf(t, ta, "fw-1", "t-stubborn"), "ready")
	waitFor(t, "trap installed", func() bool { _, err := os.Stat(ready); return err == nil })
	fm.l.sendToAgent(msgKillTask{FrameworkID: *fw.ID, TaskID: mesos.TaskID{Value: "t-stubborn"}})
	stubborn := fm.update(t, "t-stubborn", mesos.TASK_KILLED).Status
	if m := stubborn.GetMessage(); m != "Command terminated with signal Killed" {
		t.Fatalf("bad message %q", m)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// The fetcher: http and local files, executable bit, tar.gz extraction.
func TestAgentFetcher(t *testing.T) {
	archive := tarGz(t, map[string]string{"conf/my.cnf": "[mysqld]\n"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bin/tool":
			_, _ = io.WriteString(w, "#!/bin/sh\necho tool-ran\n")
		case "/bundle.tar.gz":
			_, _ = w.Write(archive)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	local := filepath.Join(t.TempDir(), "local.txt")
	if err := os.WriteFile(local, []byte("local"), 0o600); err != nil {
		t.Fatal(err)
	}
	sandbox := t.TempDir()
	err := fetchURIs(context.Background(), []mesos.CommandInfo_URI{
		{Value: srv.URL + "/bin/tool", Executable: aptr(true)},
		{Value: srv.URL + "/bundle.tar.gz"},
		{Value: local, OutputFile: aptr("renamed.txt")},
		{Value: "file://" + local},
	}, sandbox, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(sandbox, "tool")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("tool: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(sandbox, "conf", "my.cnf")); err != nil || string(b) != "[mysqld]\n" {
		t.Fatalf("extracted: %q %v", b, err)
	}
	for _, name := range []string{"renamed.txt", "local.txt"} {
		if b, err := os.ReadFile(filepath.Join(sandbox, name)); err != nil || string(b) != "local" {
			t.Fatalf("%s: %q %v", name, b, err)
		}
	}
	if err := fetchURIs(context.Background(), []mesos.CommandInfo_URI{{Value: srv.URL + "/missing"}}, sandbox, nil, ""); err == nil {
		t.Fatal("404 fetched")
	}

	// End to end: a command task runs a fetched executable; a failed fetch
	// fails the launch.
	ta := startTestAgent(t, AgentConfig{})
	ta.fm.setAutoAck(true)
	task := commandTask("t-fetch", "./tool")
	task.Command.URIs = []mesos.CommandInfo_URI{{Value: srv.URL + "/bin/tool", Executable: aptr(true)}}
	bad := commandTask("t-badfetch", "true")
	bad.Command.URIs = []mesos.CommandInfo_URI{{Value: srv.URL + "/missing"}}
	ta.fm.l.sendToAgent(msgRunTasks{Framework: testFramework("fw-1", false), Tasks: []mesos.TaskInfo{task, bad}})
	ta.fm.update(t, "t-fetch", mesos.TASK_FINISHED)
	st := ta.fm.update(t, "t-badfetch", mesos.TASK_FAILED).Status
	if st.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED {
		t.Fatalf("bad fetch failure %+v", st)
	}
}

func volumeResource(id, path string) mesos.Resource {
	r := agentScalar("disk", 64)
	r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: aptr("mysql"), Principal: aptr("op")}}
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id, Principal: aptr("op")},
		Volume:      &mesos.Volume{ContainerPath: path, Mode: mesos.RW.Enum()},
	}
	return r
}

// Persistent volumes: created on msgCheckpointResources, linked into the
// sandbox, data kept across tasks and agent restarts, deleted on DESTROY.
func TestAgentVolumes(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fm.setAutoAck(true)
	vol := volumeResource("db-0-data", "mysql-data")
	fm.l.sendToAgent(msgCheckpointResources{Resources: []mesos.Resource{vol}})
	dir := filepath.Join(ta.cfg.WorkDir, "volumes", "roles", "mysql", "db-0-data")
	waitFor(t, "volume dir", func() bool { _, err := os.Stat(dir); return err == nil })

	fw := testFramework("fw-1", true)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Tasks: []mesos.TaskInfo{
		commandTask("t-write", "echo hello > mysql-data/f && test -L mysql-data", vol)}})
	fm.update(t, "t-write", mesos.TASK_FINISHED)
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "hello\n" {
		t.Fatalf("volume data %q %v", b, err)
	}

	// The checkpointed resources are re-reported after a restart, and the
	// data is still there for the next task.
	ta.restart(true)
	reg := ta.fm.wait(t, "re-registration", func(m any) bool { _, ok := m.(msgRegisterAgent); return ok }).(msgRegisterAgent)
	if len(reg.CheckpointedResources) != 1 || reg.CheckpointedResources[0].Disk.Persistence.ID != "db-0-data" || reg.Info.GetID().GetValue() != "test-S0" {
		t.Fatalf("bad re-registration %+v", reg)
	}
	ta.fm.setAutoAck(true)
	ta.fm.l.sendToAgent(msgRunTasks{Framework: fw, Tasks: []mesos.TaskInfo{
		commandTask("t-read", "grep -q hello mysql-data/f", vol)}})
	ta.fm.update(t, "t-read", mesos.TASK_FINISHED)

	// DESTROY: the volume leaves the set and its directory goes.
	ta.fm.l.sendToAgent(msgCheckpointResources{Resources: nil})
	waitFor(t, "volume deleted", func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) })
}

// Agent restart with a checkpointing framework: the executor keeps
// running, re-subscribes to the new agent with its unacknowledged updates,
// which are re-sent to the master; the agent re-registers with the same id
// and reports the task.
func TestAgentRestartRecoversExecutor(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fw := testFramework("fw-1", true)
	ta.fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "normal"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "")}})
	running := ta.fm.update(t, "task-1", mesos.TASK_RUNNING)
	// Not acknowledged before the restart.
	pidBefore := executorPid(t, ta, "exec-1")

	ta.restart(false)
	reg := ta.fm.wait(t, "re-registration", func(m any) bool { _, ok := m.(msgRegisterAgent); return ok }).(msgRegisterAgent)
	if reg.Info.GetID().GetValue() != "test-S0" || len(reg.Tasks) != 1 || reg.Tasks[0].GetState() != mesos.TASK_RUNNING ||
		len(reg.Executors) != 1 || len(reg.Frameworks) != 1 {
		t.Fatalf("bad re-registration: %+v", reg)
	}
	ta.waitRegistered()
	if pid := executorPid(t, ta, "exec-1"); pid != pidBefore {
		t.Fatalf("executor pid changed %d -> %d", pidBefore, pid)
	}
	again := ta.fm.update(t, "task-1", mesos.TASK_RUNNING)
	if !bytes.Equal(again.Status.UUID, running.Status.UUID) {
		t.Fatal("re-sent update has another uuid")
	}
	ta.fm.ack(again)
	// The executor is fully usable after the restart.
	ta.fm.setAutoAck(true)
	ta.fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "normal"),
		Tasks: []mesos.TaskInfo{testTask("task-2", "finish")}})
	ta.fm.update(t, "task-2", mesos.TASK_FINISHED)

	// /state shows it.
	resp, err := http.Get(ta.url("/state"))
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		ID         string `json:"id"`
		Frameworks []struct {
			ID        string `json:"id"`
			Executors []struct {
				ID    string `json:"id"`
				Tasks []struct {
					ID    string `json:"id"`
					State string `json:"state"`
				} `json:"tasks"`
			} `json:"executors"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if state.ID != "test-S0" || len(state.Frameworks) != 1 || len(state.Frameworks[0].Executors) != 1 ||
		len(state.Frameworks[0].Executors[0].Tasks) != 1 || state.Frameworks[0].Executors[0].Tasks[0].State != "TASK_RUNNING" {
		t.Fatalf("bad /state %+v", state)
	}
}

// An executor that does not re-subscribe after an agent restart is killed
// and its tasks fail with REASON_EXECUTOR_REREGISTRATION_TIMEOUT.
func TestAgentRestartReregistrationTimeout(t *testing.T) {
	to := FastTimeouts()
	to.ExecutorReregistration = 300 * time.Millisecond
	ta := startTestAgent(t, AgentConfig{Timeouts: to})
	ta.fm.setAutoAck(true)
	fw := testFramework("fw-1", true)
	// A silent executor never subscribes; give it a long registration
	// timeout so that only the restart matters. Its task stays queued.
	ta.fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "silent"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "")}})
	waitFor(t, "executor started", func() bool { return executorPid(t, ta, "exec-1") != 0 })
	ta.restart(false)
	ta.fm.setAutoAck(true)
	st := ta.fm.update(t, "task-1", mesos.TASK_FAILED).Status
	if st.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT {
		t.Fatalf("bad reason %v", st.GetReason())
	}
}

// A non-checkpointing framework's executors die with the agent.
func TestAgentRestartKillsNonCheckpointing(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	ta.fm.setAutoAck(true)
	ta.fm.l.sendToAgent(msgRunTasks{Framework: testFramework("fw-1", false), Tasks: []mesos.TaskInfo{commandTask("t", "sleep 1000")}})
	ta.fm.update(t, "t", mesos.TASK_RUNNING)
	pid := executorPid(t, ta, "t")
	ta.restart(true)
	waitFor(t, "process gone", func() bool { return procGone(pid) })
	reg := ta.fm.wait(t, "re-registration", func(m any) bool { _, ok := m.(msgRegisterAgent); return ok }).(msgRegisterAgent)
	if len(reg.Tasks) != 0 {
		t.Fatalf("non-checkpointed task reported: %+v", reg.Tasks)
	}
}

func executorPid(t *testing.T, ta *testAgent, exec string) int {
	ta.a.mu.Lock()
	defer ta.a.mu.Unlock()
	for _, fw := range ta.a.frameworks {
		if ex := fw.executors[exec]; ex != nil && ex.proc != nil {
			return ex.proc.pid
		}
	}
	return 0
}

func procGone(pid int) bool {
	procTable.Lock()
	e := procTable.m[pid]
	procTable.Unlock()
	return e == nil || e.exited()
}

func TestAgentParseResources(t *testing.T) {
	rs, err := ParseResources("cpus:4;mem:8192;disk(mysql):65536;ports:[31000-31005,32000-32001]")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*mesos.Resource{}
	for i := range rs {
		got[rs[i].Name] = &rs[i]
	}
	if got["cpus"].GetScalar().GetValue() != 4 || got["mem"].GetScalar().GetValue() != 8192 {
		t.Fatalf("scalars: %v", rs)
	}
	if d := got["disk"]; d.GetScalar().GetValue() != 65536 || len(d.Reservations) != 1 || d.Reservations[0].GetRole() != "mysql" {
		t.Fatalf("disk: %v", d)
	}
	if p := got["ports"].GetRanges().GetRange(); len(p) != 2 || p[1].Begin != 32000 {
		t.Fatalf("ports: %v", p)
	}
	rs, _ = ParseResources("cpus:1")
	for i := range rs {
		r := &rs[i]
		if r.Name == "ports" && (r.GetRanges().GetRange()[0].Begin != 31000 || r.GetRanges().GetRange()[0].End != 32000) {
			t.Fatalf("default ports %v", r)
		}
	}
	if len(rs) != 4 {
		t.Fatalf("defaults missing: %v", rs)
	}
	if _, err := ParseResources("cpus:x"); err == nil {
		t.Fatal("bad scalar accepted")
	}
	attrs, err := ParseAttributes("rack:r1;zone:eu-1;level:3")
	if err != nil || len(attrs) != 3 || attrs[0].Text.GetValue() != "r1" || attrs[2].Scalar.GetValue() != 3 {
		t.Fatalf("attributes %v %v", attrs, err)
	}
	for d, want := range map[time.Duration]string{5 * time.Second: "5secs", 15 * time.Minute: "15mins", 250 * time.Millisecond: "250ms", 1500 * time.Millisecond: "1.5secs"} {
		if got := stoutDuration(d); got != want {
			t.Errorf("stoutDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The fetcher cache: a URI with cache=true is downloaded once per user,
// also when launches overlap, and each sandbox gets the file (executable
// or extracted as asked); without cache=true every fetch downloads; a
// failed download is not cached.
func TestAgentFetcherCache(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	failing := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		fail := failing && r.URL.Path == "/flaky"
		mu.Unlock()
		if fail {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "#!/bin/sh\necho "+r.URL.Path+"\n")
	}))
	defer srv.Close()
	cache := newFetchCache(filepath.Join(t.TempDir(), "fetch-cache"))
	cached := mesos.CommandInfo_URI{Value: srv.URL + "/exec?sha256=1", Executable: aptr(true), Cache: aptr(true), OutputFile: aptr("exec")}
	plain := mesos.CommandInfo_URI{Value: srv.URL + "/plain", Executable: aptr(true)}

	var wg sync.WaitGroup
	sandboxes := make([]string, 8)
	errs := make([]error, 8)
	for i := range sandboxes {
		sandboxes[i] = t.TempDir()
		wg.Go(func() {
			errs[i] = fetchURIs(context.Background(), []mesos.CommandInfo_URI{cached, plain}, sandboxes[i], cache, "alice")
		})
	}
	wg.Wait()
	for i, sb := range sandboxes {
		if errs[i] != nil {
			t.Fatalf("sandbox %d: %v", i, errs[i])
		}
		fi, err := os.Stat(filepath.Join(sb, "exec"))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("sandbox %d: exec %v %v", i, fi, err)
		}
		if b, _ := os.ReadFile(filepath.Join(sb, "exec")); !strings.Contains(string(b), "/exec") {
			t.Fatalf("sandbox %d: exec holds %q", i, b)
		}
	}
	if err := fetchURIs(context.Background(), []mesos.CommandInfo_URI{cached}, t.TempDir(), cache, "bob"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if hits["/exec"] != 2 || hits["/plain"] != 8 {
		t.Errorf("downloads: /exec %d (want 2: once for alice, once for bob), /plain %d (want 8)", hits["/exec"], hits["/plain"])
	}
	mu.Unlock()

	flaky := mesos.CommandInfo_URI{Value: srv.URL + "/flaky", Cache: aptr(true), Extract: aptr(false)}
	if err := fetchURIs(context.Background(), []mesos.CommandInfo_URI{flaky}, t.TempDir(), cache, "alice"); err == nil {
		t.Fatal("a 503 was fetched")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	sb := t.TempDir()
	if err := fetchURIs(context.Background(), []mesos.CommandInfo_URI{flaky}, sb, cache, "alice"); err != nil {
		t.Fatalf("after the server recovered: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(sb, "flaky")); !strings.Contains(string(b), "/flaky") {
		t.Fatalf("flaky holds %q", b)
	}
}
