package devcluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// A real executor process (mesos-go client, protobuf) is launched, queued
// tasks reach it as LAUNCH after it subscribes, its updates are forwarded
// reliably (retried until acknowledged, one in flight per task), and it
// gets the Mesos environment.
func TestAgentCustomExecutorReliableUpdates(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fw := testFramework("fw-1", false)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "normal"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "finish")}})

	running := fm.update(t, "task-1", mesos.TASK_RUNNING)
	st := running.Status
	if st.GetSource() != mesos.SOURCE_EXECUTOR || len(st.UUID) != 16 || st.GetAgentID().GetValue() != "test-S0" ||
		st.GetExecutorID().GetValue() != "exec-1" || st.Timestamp == nil || running.FrameworkID.Value != "fw-1" {
		t.Fatalf("bad forwarded update: %+v", st)
	}
	if st.ContainerStatus == nil || st.ContainerStatus.ContainerID == nil {
		t.Fatalf("no container status: %+v", st)
	}
	// Not acknowledged: the same update is re-sent, and FINISHED waits.
	fm.waitN(t, 2, "RUNNING retried", isUpdate("task-1", mesos.TASK_RUNNING))
	if n := len(fm.matching(isUpdate("task-1", mesos.TASK_FINISHED))); n != 0 {
		t.Fatalf("FINISHED forwarded before RUNNING was acknowledged")
	}
	for _, m := range fm.matching(isUpdate("task-1", mesos.TASK_RUNNING)) {
		if !bytes.Equal(m.(msgStatusUpdate).Status.UUID, st.UUID) {
			t.Fatalf("retry carries another uuid")
		}
	}
	// A wrong ack changes nothing; the right one releases FINISHED.
	fm.l.sendToAgent(msgAcknowledge{FrameworkID: running.FrameworkID, TaskID: st.TaskID, UUID: testUUID()})
	fm.ack(running)
	fin := fm.update(t, "task-1", mesos.TASK_FINISHED)
	fm.ack(fin)
	retriesBefore := len(fm.matching(isUpdate("task-1", mesos.TASK_FINISHED)))
	// Acked: the task leaves the agent's live tasks.
	waitFor(t, "task completed", func() bool {
		ta.a.mu.Lock()
		defer ta.a.mu.Unlock()
		_, _, task := ta.a.findTaskLocked("fw-1", "task-1")
		return task == nil
	})
	if n := len(fm.matching(isUpdate("task-1", mesos.TASK_FINISHED))); n > retriesBefore+1 {
		t.Fatalf("FINISHED still retried after ack (%d)", n)
	}

	// Environment of §2.3.
	sandbox := sandboxOf(t, ta, "fw-1", "exec-1")
	env := readEnv(t, filepath.Join(sandbox, "env.txt"))
	want := map[string]string{
		"MESOS_FRAMEWORK_ID": "fw-1", "MESOS_EXECUTOR_ID": "exec-1", "MESOS_DIRECTORY": sandbox,
		"MESOS_SANDBOX": sandbox, "MESOS_AGENT_ENDPOINT": ta.addr, "MESOS_CHECKPOINT": "0",
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "2secs", "MESOS_HTTP_COMMAND_EXECUTOR": "0",
		"MESOS_SLAVE_ID": "test-S0", testExecutorEnv: "normal",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	wantDir := filepath.Join(ta.cfg.WorkDir, "slaves", "test-S0", "frameworks", "fw-1", "executors", "exec-1", "runs")
	if filepath.Dir(sandbox) != wantDir {
		t.Errorf("sandbox %s not under %s", sandbox, wantDir)
	}

	// A second task on the running executor is delivered at once; KILL
	// reaches the executor, which answers TASK_KILLED.
	fm.setAutoAck(true)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "normal"),
		Tasks: []mesos.TaskInfo{testTask("task-2", "")}})
	fm.update(t, "task-2", mesos.TASK_RUNNING)
	fm.l.sendToAgent(msgKillTask{FrameworkID: *fw.ID, TaskID: mesos.TaskID{Value: "task-2"}})
	fm.update(t, "task-2", mesos.TASK_KILLED)

	// Messages both ways.
	fm.l.sendToAgent(msgFrameworkToExecutor{FrameworkID: *fw.ID, ExecutorID: mesos.ExecutorID{Value: "exec-1"}, Data: []byte("hi")})
	msg := fm.wait(t, "executor message", func(m any) bool { _, ok := m.(msgExecutorToFramework); return ok }).(msgExecutorToFramework)
	if string(msg.Data) != "echo:hi" || msg.ExecutorID.Value != "exec-1" {
		t.Fatalf("bad executor message %+v", msg)
	}

	// SHUTDOWN: the executor exits by itself; the master hears it.
	fm.l.sendToAgent(msgShutdownExecutor{FrameworkID: *fw.ID, ExecutorID: mesos.ExecutorID{Value: "exec-1"}})
	ex := fm.wait(t, "exited executor", func(m any) bool { _, ok := m.(msgExitedExecutor); return ok }).(msgExitedExecutor)
	if ex.ExecutorID.Value != "exec-1" || ex.Status != 0 {
		t.Fatalf("bad exited executor %+v", ex)
	}
}

// An executor process that dies with a live task: TASK_FAILED from the
// agent (reliable, REASON_EXECUTOR_TERMINATED) and msgExitedExecutor with
// the wait status.
func TestAgentExecutorExitFailsTasks(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fm.setAutoAck(true)
	fm.l.sendToAgent(msgRunTasks{Framework: testFramework("fw-1", false), Executor: testExecutorInfo(t, "exec-1", "normal"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "exit:7")}})
	failed := fm.update(t, "task-1", mesos.TASK_FAILED).Status
	if failed.GetSource() != mesos.SOURCE_AGENT || failed.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || len(failed.UUID) != 16 {
		t.Fatalf("bad TASK_FAILED: %+v", failed)
	}
	ex := fm.wait(t, "exited executor", func(m any) bool { _, ok := m.(msgExitedExecutor); return ok }).(msgExitedExecutor)
	if ws := syscall.WaitStatus(ex.Status); !ws.Exited() || ws.ExitStatus() != 7 {
		t.Fatalf("exit status %#x, want exit 7", ex.Status)
	}
}

// An executor that never subscribes: its tasks fail with
// REASON_EXECUTOR_REGISTRATION_TIMEOUT and its process group is killed.
func TestAgentExecutorRegistrationTimeout(t *testing.T) {
	to := FastTimeouts()
	to.ExecutorRegistration = 500 * time.Millisecond
	ta := startTestAgent(t, AgentConfig{Timeouts: to})
	fm := ta.fm
	fm.setAutoAck(true)
	fm.l.sendToAgent(msgRunTasks{Framework: testFramework("fw-1", false), Executor: testExecutorInfo(t, "exec-1", "silent"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "")}})
	failed := fm.update(t, "task-1", mesos.TASK_FAILED).Status
	if failed.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT || failed.GetSource() != mesos.SOURCE_AGENT {
		t.Fatalf("bad TASK_FAILED: %+v", failed)
	}
	ex := fm.wait(t, "exited executor", func(m any) bool { _, ok := m.(msgExitedExecutor); return ok }).(msgExitedExecutor)
	if ws := syscall.WaitStatus(ex.Status); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("executor not killed: %#x", ex.Status)
	}
}

// ---- the executor API spoken by hand -----------------------------------

func post(t *testing.T, url, contentType, accept string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func jsonCall(t *testing.T, c *executor.Call) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func expectCode(t *testing.T, resp *http.Response, code int, what string) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("%s: got %d (%s), want %d", what, resp.StatusCode, b, code)
	}
	return string(b)
}

// recordReader reads RecordIO records.
type recordReader struct{ r *bufio.Reader }

func (rr recordReader) next(t *testing.T) []byte {
	t.Helper()
	line, err := rr.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read record length: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
	if err != nil || n <= 0 {
		t.Fatalf("bad record length %q", line)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(rr.r, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

func (rr recordReader) event(t *testing.T, c codec) *executor.Event {
	t.Helper()
	rec := rr.next(t)
	var ev executor.Event
	if err := c.decode(rec, &ev); err != nil {
		t.Fatalf("decode event %q: %v", rec, err)
	}
	return &ev
}

// The executor API's status codes, in Mesos' order, and the SUBSCRIBE
// stream in JSON and protobuf, with UPDATE validation, ACKNOWLEDGED and the
// takeover of a stream by a second SUBSCRIBE. The test impersonates the
// executor: the launched process is "silent".
func TestAgentExecutorAPI(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fw := testFramework("fw-1", false)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "silent"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "")}})
	waitFor(t, "executor created", func() bool {
		ta.a.mu.Lock()
		defer ta.a.mu.Unlock()
		f := ta.a.frameworks["fw-1"]
		return f != nil && f.executors["exec-1"] != nil
	})
	u := ta.url("/api/v1/executor")
	base := executor.Call{ExecutorID: mesos.ExecutorID{Value: "exec-1"}, FrameworkID: mesos.FrameworkID{Value: "fw-1"}}
	subscribe := base
	subscribe.Type = executor.Call_SUBSCRIBE
	subscribe.Subscribe = &executor.Call_Subscribe{}
	status := func(state mesos.TaskState) mesos.TaskStatus {
		return mesos.TaskStatus{TaskID: mesos.TaskID{Value: "task-1"}, State: state.Enum(),
			Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: testUUID()}
	}
	update := func(st mesos.TaskStatus) *executor.Call {
		c := base
		c.Type = executor.Call_UPDATE
		c.Update = &executor.Call_Update{Status: st}
		return &c
	}

	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, resp, 405, "GET")
	expectCode(t, post(t, u, "", "", jsonCall(t, &subscribe)), 400, "no Content-Type")
	expectCode(t, post(t, u, "application/json; charset=utf-8", "", jsonCall(t, &subscribe)), 415, "bad Content-Type")
	expectCode(t, post(t, u, mediaJSON, "", []byte("{nope")), 400, "bad JSON")
	expectCode(t, post(t, u, mediaProtobuf, "", []byte{0xff, 0xff}), 400, "bad protobuf")
	noType := base
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, &noType)), 400, "no type")
	expectCode(t, post(t, u, mediaJSON, "text/html", jsonCall(t, &subscribe)), 406, "Accept text/html")
	other := subscribe
	other.FrameworkID.Value = "fw-unknown"
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, &other)), 400, "unknown framework")
	other = subscribe
	other.ExecutorID.Value = "exec-unknown"
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, &other)), 400, "unknown executor")
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(status(mesos.TASK_RUNNING)))), 403, "UPDATE before SUBSCRIBE")
	hb := base
	hb.Type = executor.Call_HEARTBEAT
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, &hb)), 202, "HEARTBEAT")

	// SUBSCRIBE in JSON (no Accept => JSON).
	resp = post(t, u, mediaJSON, "", jsonCall(t, &subscribe))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaJSON ||
		resp.Header.Get("Mesos-Stream-Id") != "" || resp.ContentLength != -1 {
		t.Fatalf("bad SUBSCRIBE response: %d %v", resp.StatusCode, resp.Header)
	}
	jsonStream := recordReader{bufio.NewReader(resp.Body)}
	rec := jsonStream.next(t)
	if bytes.ContainsRune(rec, '\n') || !bytes.Contains(rec, []byte(`"type":"SUBSCRIBED"`)) {
		t.Fatalf("bad first record %s", rec)
	}
	var ev executor.Event
	if err := json.Unmarshal(rec, &ev); err != nil {
		t.Fatal(err)
	}
	sub := ev.Subscribed
	if sub == nil || sub.FrameworkInfo.GetID().GetValue() != "fw-1" || sub.ExecutorInfo.ExecutorID.Value != "exec-1" ||
		sub.AgentInfo.GetID().GetValue() != "test-S0" || sub.AgentInfo.Hostname != "agent-test" || sub.ContainerID.GetValue() == "" {
		t.Fatalf("bad SUBSCRIBED %s", rec)
	}
	launch := jsonStream.event(t, codec{mediaJSON})
	if launch.Type != executor.Event_LAUNCH || launch.Launch.Task.TaskID.Value != "task-1" {
		t.Fatalf("want LAUNCH task-1, got %v", launch)
	}

	// UPDATE validation.
	bad := status(mesos.TASK_RUNNING)
	bad.UUID = []byte("short")
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(bad))), 400, "short uuid")
	bad = status(mesos.TASK_RUNNING)
	bad.Source = mesos.SOURCE_AGENT.Enum()
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(bad))), 400, "source")
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(status(mesos.TASK_STAGING)))), 400, "TASK_STAGING")
	bad = status(mesos.TASK_RUNNING)
	bad.ExecutorID = &mesos.ExecutorID{Value: "other"}
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(bad))), 400, "executor id")

	// A valid UPDATE: 202, ACKNOWLEDGED on the stream, forwarded.
	good := status(mesos.TASK_RUNNING)
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, update(good))), 202, "UPDATE")
	ack := jsonStream.event(t, codec{mediaJSON})
	if ack.Type != executor.Event_ACKNOWLEDGED || !bytes.Equal(ack.Acknowledged.UUID, good.UUID) || ack.Acknowledged.TaskID.Value != "task-1" {
		t.Fatalf("want ACKNOWLEDGED, got %v", ack)
	}
	fwd := fm.update(t, "task-1", mesos.TASK_RUNNING)
	if !bytes.Equal(fwd.Status.UUID, good.UUID) {
		t.Fatal("forwarded update has another uuid")
	}
	msgCall := base
	msgCall.Type = executor.Call_MESSAGE
	msgCall.Message = &executor.Call_Message{Data: []byte("ping")}
	expectCode(t, post(t, u, mediaJSON, "", jsonCall(t, &msgCall)), 202, "MESSAGE")
	fm.wait(t, "message", func(m any) bool { x, ok := m.(msgExecutorToFramework); return ok && string(x.Data) == "ping" })

	// A second SUBSCRIBE, in protobuf, takes over: the JSON stream ends.
	pb, err := subscribe.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp2 := post(t, u, mediaProtobuf, mediaProtobuf, pb)
	defer resp2.Body.Close()
	if resp2.StatusCode != 200 || resp2.Header.Get("Content-Type") != mediaProtobuf {
		t.Fatalf("bad protobuf SUBSCRIBE: %d %v", resp2.StatusCode, resp2.Header)
	}
	pbStream := recordReader{bufio.NewReader(resp2.Body)}
	first := pbStream.event(t, codec{mediaProtobuf})
	if first.Type != executor.Event_SUBSCRIBED || first.Subscribed.FrameworkInfo.GetID().GetValue() != "fw-1" {
		t.Fatalf("bad protobuf SUBSCRIBED %v", first)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("old stream ended with %v", err)
	}
	resp.Body.Close()

	// KILL of the delivered task reaches the executor; SHUTDOWN too.
	fm.l.sendToAgent(msgKillTask{FrameworkID: *fw.ID, TaskID: mesos.TaskID{Value: "task-1"},
		KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Second)}}})
	kill := pbStream.event(t, codec{mediaProtobuf})
	if kill.Type != executor.Event_KILL || kill.Kill.TaskID.Value != "task-1" || kill.Kill.KillPolicy.GetGracePeriod().GetNanoseconds() != int64(time.Second) {
		t.Fatalf("want KILL, got %v", kill)
	}
	fm.l.sendToAgent(msgFrameworkToExecutor{FrameworkID: *fw.ID, ExecutorID: mesos.ExecutorID{Value: "exec-1"}, Data: []byte("hello")})
	if m := pbStream.event(t, codec{mediaProtobuf}); m.Type != executor.Event_MESSAGE || string(m.Message.Data) != "hello" {
		t.Fatalf("want MESSAGE, got %v", m)
	}
	fm.setAutoAck(true)
	fm.l.sendToAgent(msgShutdownExecutor{FrameworkID: *fw.ID, ExecutorID: mesos.ExecutorID{Value: "exec-1"}})
	if s := pbStream.event(t, codec{mediaProtobuf}); s.Type != executor.Event_SHUTDOWN {
		t.Fatalf("want SHUTDOWN, got %v", s)
	}
	// The silent process ignores it: killed after the grace period, the
	// live task fails.
	fm.update(t, "task-1", mesos.TASK_FAILED)
	fm.wait(t, "exited executor", func(m any) bool { _, ok := m.(msgExitedExecutor); return ok })
}

// KILL of a task still queued for an executor that has not subscribed.
func TestAgentKillQueuedTask(t *testing.T) {
	ta := startTestAgent(t, AgentConfig{})
	fm := ta.fm
	fm.setAutoAck(true)
	fw := testFramework("fw-1", false)
	fm.l.sendToAgent(msgRunTasks{Framework: fw, Executor: testExecutorInfo(t, "exec-1", "silent"),
		Tasks: []mesos.TaskInfo{testTask("task-1", "")}})
	fm.l.sendToAgent(msgKillTask{FrameworkID: *fw.ID, TaskID: mesos.TaskID{Value: "task-1"}})
	st := fm.update(t, "task-1", mesos.TASK_KILLED).Status
	if st.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH {
		t.Fatalf("bad reason %v", st.GetReason())
	}
	// The executor, left without tasks, is destroyed.
	fm.wait(t, "exited executor", func(m any) bool { _, ok := m.(msgExitedExecutor); return ok })
}

func sandboxOf(t *testing.T, ta *testAgent, fw, exec string) string {
	t.Helper()
	ta.a.mu.Lock()
	defer ta.a.mu.Unlock()
	f := ta.a.frameworks[fw]
	if f == nil {
		t.Fatalf("no framework %s", fw)
	}
	if ex := f.executors[exec]; ex != nil {
		return ex.directory
	}
	for _, ex := range f.completedExecutors {
		if ex.id() == exec {
			return ex.directory
		}
	}
	t.Fatalf("no executor %s", exec)
	return ""
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	waitFor(t, path, func() bool { _, err := os.Stat(path); return err == nil })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}
