package devcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
)

// The test binary doubles as a real executor process: when the agent starts
// it with DEVCLUSTER_AGENT_TEST_EXECUTOR set, init runs the executor below
// (written against mesos-go's executor client) instead of the tests.
const testExecutorEnv = "DEVCLUSTER_AGENT_TEST_EXECUTOR"

// triggerPrefix names the files through which a test makes the executor
// send an update while its agent is down.
const triggerPrefix = "trigger-update."

func init() {
	mode := os.Getenv(testExecutorEnv)
	if mode == "" {
		return
	}
	os.Exit(runTestExecutor(mode))
}

// runTestExecutor behaves per mode: "silent" never subscribes; "normal"
// subscribes (re-subscribing while checkpointing) and for each LAUNCH sends
// TASK_RUNNING, then acts on the task's data: "finish" sends TASK_FINISHED,
// "exit:N" exits with N, "twice" sends TASK_RUNNING then TASK_FINISHED at
// once. KILL answers TASK_KILLED; SHUTDOWN exits after killing tasks;
// MESSAGE is echoed back. It writes its environment to env.txt.
func runTestExecutor(mode string) int {
	sandbox := os.Getenv("MESOS_SANDBOX")
	_ = os.WriteFile(filepath.Join(sandbox, "env.txt"), []byte(strings.Join(os.Environ(), "\n")), 0o644)
	logf := func(format string, args ...any) {
		f, err := os.OpenFile(filepath.Join(sandbox, "executor.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(time.Now().Format("15:04:05.000 ") + strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
			f.Close()
		}
	}
	if mode == "silent" {
		select {}
	}
	cfg, err := config.FromEnv()
	if err != nil {
		logf("config: %v", err)
		return 2
	}
	codec := codecs.ByMediaType[codecs.MediaTypeProtobuf]
	if os.Getenv("TEST_EXECUTOR_CODEC") == "json" {
		codec = codecs.ByMediaType[codecs.MediaTypeJSON]
	}
	cli := httpcli.New(
		httpcli.Endpoint("http://"+cfg.AgentEndpoint+"/api/v1/executor"),
		httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	sender := calls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	subscriber := calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	unackedTasks := map[string]mesos.TaskInfo{}
	unackedUpdates := map[string]executor.Call_Update{}
	live := map[string]bool{}
	ctx := context.Background()
	update := func(taskID mesos.TaskID, state mesos.TaskState) {
		st := mesos.TaskStatus{
			TaskID: taskID, State: state.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(),
			ExecutorID: &mesos.ExecutorID{Value: cfg.ExecutorID}, UUID: newUUID(),
		}
		u := calls.Update(st)
		resp, err := sender.Send(ctx, calls.NonStreaming(u))
		if resp != nil {
			resp.Close()
		}
		if err != nil {
			logf("update %s %s: %v", taskID.Value, state, err)
			return
		}
		unackedUpdates[string(st.UUID)] = *u.Update
		if isTerminalState(state) {
			delete(live, taskID.Value)
		}
	}
	quit := false
	handle := func(e *executor.Event) {
		logf("event %s", e.Type)
		switch e.Type {
		case executor.Event_LAUNCH:
			t := e.Launch.Task
			unackedTasks[t.TaskID.Value] = t
			live[t.TaskID.Value] = true
			update(t.TaskID, mesos.TASK_RUNNING)
			switch data := string(t.Data); {
			case data == "finish":
				update(t.TaskID, mesos.TASK_FINISHED)
			case strings.HasPrefix(data, "exit:"):
				n, _ := strconv.Atoi(strings.TrimPrefix(data, "exit:"))
				os.Exit(n)
			}
		case executor.Event_LAUNCH_GROUP:
			for _, t := range e.LaunchGroup.TaskGroup.Tasks {
				unackedTasks[t.TaskID.Value] = t
				live[t.TaskID.Value] = true
				update(t.TaskID, mesos.TASK_RUNNING)
			}
		case executor.Event_KILL:
			update(e.Kill.TaskID, mesos.TASK_KILLED)
		case executor.Event_ACKNOWLEDGED:
			delete(unackedTasks, e.Acknowledged.TaskID.Value)
			delete(unackedUpdates, string(e.Acknowledged.UUID))
		case executor.Event_MESSAGE:
			resp, err := sender.Send(ctx, calls.NonStreaming(calls.Message(append([]byte("echo:"), e.Message.Data...))))
			if resp != nil {
				resp.Close()
			}
			if err != nil {
				logf("message: %v", err)
			}
		case executor.Event_SHUTDOWN:
			for id := range live {
				update(mesos.TaskID{Value: id}, mesos.TASK_KILLED)
			}
			quit = true
		}
	}
	disconnected := time.Now()
	for {
		var tasks []mesos.TaskInfo
		for _, t := range unackedTasks {
			tasks = append(tasks, t)
		}
		var updates []executor.Call_Update
		for _, u := range unackedUpdates {
			updates = append(updates, u)
		}
		resp, err := subscriber.Send(ctx, calls.NonStreaming(calls.Subscribe(tasks, updates)))
		if err == nil {
			logf("subscribed")
			for !quit {
				var e executor.Event
				if err = resp.Decode(&e); err != nil {
					break
				}
				handle(&e)
			}
			disconnected = time.Now()
		}
		if resp != nil {
			resp.Close()
		}
		logf("disconnected: %v", err)
		if quit {
			return 0
		}
		if !cfg.Checkpoint || time.Since(disconnected) > cfg.RecoveryTimeout {
			return 1
		}
		// Updates the test asks for while the agent is away (a file
		// <sandbox>/trigger-update.<task> holding "STATE\nmessage") are sent
		// (and fail) like a real executor's, kept unacknowledged, and go out
		// again in the next SUBSCRIBE.
		if paths, _ := filepath.Glob(filepath.Join(sandbox, triggerPrefix+"*")); len(paths) > 0 {
			for _, p := range paths {
				if strings.HasSuffix(p, ".sent") || strings.HasSuffix(p, ".tmp") {
					continue
				}
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				stateName, message, _ := strings.Cut(string(b), "\n")
				taskID := mesos.TaskID{Value: strings.TrimPrefix(filepath.Base(p), triggerPrefix)}
				st := mesos.TaskStatus{
					TaskID: taskID, State: mesos.TaskState(mesos.TaskState_value[strings.TrimSpace(stateName)]).Enum(),
					Source: mesos.SOURCE_EXECUTOR.Enum(), Message: &message,
					ExecutorID: &mesos.ExecutorID{Value: cfg.ExecutorID}, UUID: newUUID(),
				}
				u := calls.Update(st)
				unackedUpdates[string(st.UUID)] = *u.Update
				resp, err := sender.Send(ctx, calls.NonStreaming(u))
				if resp != nil {
					resp.Close()
				}
				logf("triggered update %s %s while disconnected: %v", taskID.Value, st.GetState(), err)
				_ = os.Rename(p, p+".sent")
			}
		}
		<-time.After(50 * time.Millisecond) // the executor's re-subscription backoff
	}
}

// ---- fake master --------------------------------------------------------

// fakeMaster is the master side of a link: it records every message,
// registers the agent as agentID, and can acknowledge updates itself.
type fakeMaster struct {
	mu      sync.Mutex
	msgs    []any
	changed chan struct{}
	agentID string
	autoAck bool
	l       *link
}

func (fm *fakeMaster) handle(msg any) {
	fm.mu.Lock()
	fm.msgs = append(fm.msgs, msg)
	close(fm.changed)
	fm.changed = make(chan struct{})
	l, autoAck := fm.l, fm.autoAck
	fm.mu.Unlock()
	switch m := msg.(type) {
	case msgRegisterAgent:
		l.sendToAgent(msgRegistered{AgentID: mesos.AgentID{Value: fm.agentID}})
	case msgStatusUpdate:
		if autoAck && len(m.Status.UUID) > 0 {
			l.sendToAgent(msgAcknowledge{FrameworkID: m.FrameworkID, TaskID: m.Status.TaskID, UUID: m.Status.UUID})
		}
	}
}

func (fm *fakeMaster) setAutoAck(v bool) {
	fm.mu.Lock()
	fm.autoAck = v
	fm.mu.Unlock()
}

func (fm *fakeMaster) ack(u msgStatusUpdate) {
	fm.l.sendToAgent(msgAcknowledge{FrameworkID: u.FrameworkID, TaskID: u.Status.TaskID, UUID: u.Status.UUID})
}

// matching returns the recorded messages pred accepts.
func (fm *fakeMaster) matching(pred func(any) bool) []any {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	var out []any
	for _, m := range fm.msgs {
		if pred(m) {
			out = append(out, m)
		}
	}
	return out
}

// waitN waits until at least n recorded messages match pred.
func (fm *fakeMaster) waitN(t *testing.T, n int, what string, pred func(any) bool) []any {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		fm.mu.Lock()
		ch := fm.changed
		fm.mu.Unlock()
		if got := fm.matching(pred); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d× %s; got %d", n, what, len(fm.matching(pred)))
		}
	}
}

func (fm *fakeMaster) wait(t *testing.T, what string, pred func(any) bool) any {
	t.Helper()
	return fm.waitN(t, 1, what, pred)[0]
}

// update waits for a status update of task in state.
func (fm *fakeMaster) update(t *testing.T, task string, state mesos.TaskState) msgStatusUpdate {
	t.Helper()
	return fm.wait(t, task+" "+state.String(), isUpdate(task, state)).(msgStatusUpdate)
}

func isUpdate(task string, state mesos.TaskState) func(any) bool {
	return func(m any) bool {
		u, ok := m.(msgStatusUpdate)
		return ok && u.Status.TaskID.Value == task && u.Status.GetState() == state
	}
}

// ---- test agent ---------------------------------------------------------

type testAgent struct {
	t    *testing.T
	cfg  AgentConfig
	a    *Agent
	srv  *http.Server
	fm   *fakeMaster
	addr string
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("AGENT_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startTestAgent starts an agent on a fresh loopback port with a fake
// master, and waits until it is registered.
func startTestAgent(t *testing.T, cfg AgentConfig) *testAgent {
	t.Helper()
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = FastTimeouts()
	}
	if cfg.Resources == "" {
		cfg.Resources = "cpus:4;mem:4096;disk:8192;ports:[31000-31100]"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "agent-test"
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	ta := &testAgent{t: t, cfg: cfg}
	ta.start(true)
	t.Cleanup(func() { ta.stop(true) })
	return ta
}

func (ta *testAgent) start(waitRegistered bool) {
	t := ta.t
	t.Helper()
	ln, err := net.Listen("tcp", ta.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ta.cfg.Listen = ln.Addr().String()
	ta.addr = ln.Addr().String()
	a, err := NewAgent(ta.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ta.a = a
	ta.srv = &http.Server{Handler: a}
	go func() { _ = ta.srv.Serve(ln) }()
	fm := &fakeMaster{changed: make(chan struct{}), agentID: "test-S0"}
	if id := a.ID(); id != "" {
		fm.agentID = id
	}
	fm.l = newLink(a.HandleMasterMessage, fm.handle)
	ta.fm = fm
	a.Connect(fm.l)
	if waitRegistered {
		ta.waitRegistered()
	}
}

func (ta *testAgent) waitRegistered() {
	ta.t.Helper()
	waitFor(ta.t, "agent registered", func() bool { return ta.a.ID() != "" && ta.registered() })
}

func (ta *testAgent) registered() bool {
	ta.a.mu.Lock()
	defer ta.a.mu.Unlock()
	return ta.a.registered
}

func (ta *testAgent) stop(kill bool) {
	if ta.a == nil {
		return
	}
	ta.a.Close(kill)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ta.srv.Shutdown(ctx)
	ta.fm.l.close()
	ta.a = nil
}

// restart simulates an agent restart: Close(false), then a new Agent on the
// same work dir and address.
func (ta *testAgent) restart(waitRegistered bool) {
	ta.t.Helper()
	ta.stop(false)
	ta.start(waitRegistered)
}

func (ta *testAgent) url(path string) string { return "http://" + ta.addr + path }

// waitFor polls cond until it holds, failing the test after 15 s. It is
// the one way these tests wait for a state they do not control.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// ---- fixtures -----------------------------------------------------------

func testFramework(id string, checkpoint bool) mesos.FrameworkInfo {
	return mesos.FrameworkInfo{
		ID: &mesos.FrameworkID{Value: id}, User: "tester", Name: "agent-test",
		Checkpoint: aptr(checkpoint), Roles: []string{"mysql"},
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}},
	}
}

// testExecutorInfo runs this test binary as an executor in mode.
func testExecutorInfo(t *testing.T, id, mode string, extraEnv ...string) *mesos.ExecutorInfo {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	vars := []mesos.Environment_Variable{{Name: testExecutorEnv, Value: aptr(mode)}}
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		vars = append(vars, mesos.Environment_Variable{Name: k, Value: aptr(v)})
	}
	return &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: id},
		Type:       mesos.ExecutorInfo_CUSTOM,
		Command: &mesos.CommandInfo{
			Value: aptr(exe), Shell: aptr(false), Arguments: []string{"test-executor"},
			Environment: &mesos.Environment{Variables: vars},
		},
		Resources: []mesos.Resource{agentScalar("cpus", 0.1), agentScalar("mem", 32)},
	}
}

func testTask(id, data string, rs ...mesos.Resource) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "test-S0"},
		Resources: append([]mesos.Resource{agentScalar("cpus", 0.1), agentScalar("mem", 32)}, rs...),
		Data:      []byte(data),
	}
}

func commandTask(id, cmd string, rs ...mesos.Resource) mesos.TaskInfo {
	t := testTask(id, "", rs...)
	t.Data = nil
	t.Command = &mesos.CommandInfo{Value: aptr(cmd)}
	return t
}

func testUUID() []byte {
	u := uuid.New()
	return u[:]
}
