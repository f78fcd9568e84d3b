package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// ---- a fake agent ---------------------------------------------------------

type fakeAgent struct {
	mu          sync.Mutex
	subscribes  []*executor.Call
	streams     []*fakeStream
	updates     []executor.Call_Update // UPDATE calls the agent took
	failUpdates bool
	failed      int // UPDATE calls refused
	failSubs    int // how many SUBSCRIBEs to refuse (-1: all)
	changed     chan struct{}
}

func newFakeAgent() *fakeAgent { return &fakeAgent{changed: make(chan struct{})} }

func (a *fakeAgent) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *fakeAgent) Subscribe(_ context.Context, call *executor.Call) (EventStream, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subscribes = append(a.subscribes, call)
	defer a.notifyLocked()
	if a.failSubs != 0 {
		a.failSubs--
		return nil, errors.New("connection refused")
	}
	s := &fakeStream{events: make(chan *executor.Event, 64), closed: make(chan struct{})}
	a.streams = append(a.streams, s)
	return s, nil
}

func (a *fakeAgent) Send(_ context.Context, call *executor.Call) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if call.Type != executor.Call_UPDATE {
		return nil
	}
	if a.failUpdates {
		a.failed++
		a.notifyLocked()
		return errors.New("agent unavailable")
	}
	a.updates = append(a.updates, *call.Update)
	a.notifyLocked()
	return nil
}

// waitFor waits until cond (called under a.mu) holds.
func (a *fakeAgent) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		ok, ch := cond(), a.changed
		a.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stream waits for the n-th subscription (from 1) and returns its stream.
func (a *fakeAgent) stream(t *testing.T, n int) *fakeStream {
	t.Helper()
	a.waitFor(t, "a subscription", func() bool { return len(a.streams) >= n })
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streams[n-1]
}

// update waits for an UPDATE of taskID in state and returns it.
func (a *fakeAgent) update(t *testing.T, taskID string, state mesos.TaskState) mesos.TaskStatus {
	t.Helper()
	var st mesos.TaskStatus
	a.waitFor(t, taskID+" "+state.String(), func() bool {
		for _, u := range a.updates {
			if u.Status.TaskID.Value == taskID && u.Status.GetState() == state {
				st = u.Status
				return true
			}
		}
		return false
	})
	return st
}

type fakeStream struct {
	events chan *executor.Event
	closed chan struct{}
	once   sync.Once
}

func (s *fakeStream) Next() (*executor.Event, error) {
	select {
	case ev, ok := <-s.events:
		if !ok {
			return nil, io.EOF
		}
		return ev, nil
	case <-s.closed:
		return nil, errors.New("closed")
	}
}

func (s *fakeStream) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *fakeStream) send(ev *executor.Event) { s.events <- ev }

// hangUp is the agent going away: the executor reads EOF.
func (s *fakeStream) hangUp() { close(s.events) }

func subscribed() *executor.Event {
	id := "fw-1"
	return &executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		FrameworkInfo: mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: id}}}}
}

func launchEvent(id string) *executor.Event {
	return &executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "agent-1"}}}}
}

func ackEvent(st mesos.TaskStatus) *executor.Event {
	return &executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}}
}

// ---- a fake workload ------------------------------------------------------

type fakeWorkload struct {
	startErr  error
	startGate chan struct{} // if set, Start waits for it (or ctx)
	done      chan struct{}
	once      sync.Once
	mu        sync.Mutex
	err       error
	stops     []time.Duration
}

func newFakeWorkload() *fakeWorkload { return &fakeWorkload{done: make(chan struct{})} }

func (w *fakeWorkload) Start(ctx context.Context) error {
	if w.startGate != nil {
		select {
		case <-w.startGate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return w.startErr
}

func (w *fakeWorkload) Done() <-chan struct{} { return w.done }

func (w *fakeWorkload) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *fakeWorkload) end(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.once.Do(func() { close(w.done) })
}

func (w *fakeWorkload) Stop(grace time.Duration) error {
	w.mu.Lock()
	w.stops = append(w.stops, grace)
	w.mu.Unlock()
	w.once.Do(func() { close(w.done) })
	return nil
}

func (w *fakeWorkload) stopGraces() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.stops...)
}

// ---- running an executor --------------------------------------------------

type run struct {
	agent *fakeAgent
	work  map[string]*fakeWorkload
	errc  chan error
}

func startExecutor(t *testing.T, checkpoint bool, work map[string]*fakeWorkload, tweak func(*Config)) *run {
	t.Helper()
	r := &run{agent: newFakeAgent(), work: work, errc: make(chan error, 1)}
	cfg := Config{
		FrameworkID: "fw-1", ExecutorID: "exec-1", Sandbox: t.TempDir(),
		Checkpoint: checkpoint, RecoveryTimeout: time.Minute, SubscriptionBackoffMax: 50 * time.Millisecond,
		ShutdownGracePeriod: 2 * time.Second, RetryInterval: 20 * time.Millisecond,
		Agent: r.agent,
		Factory: func(task mesos.TaskInfo, sandbox string) (Workload, error) {
			if w := work[task.TaskID.Value]; w != nil {
				return w, nil
			}
			return ByKind(map[string]Factory{"hold": NewHold})(task, sandbox)
		},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.errc <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.errc
	})
	return r
}

func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the executor did not end")
		return nil
	}
}

// ---- tests ----------------------------------------------------------------

// Updates the agent did not acknowledge, including one that could not be
// sent, and the task without an acknowledged update travel in the next
// SUBSCRIBE, oldest first; once they are acknowledged the executor of the
// finished task exits.
func TestUnacknowledgedResentOnResubscribe(t *testing.T) {
	w := newFakeWorkload()
	r := startExecutor(t, true, map[string]*fakeWorkload{"t1": w}, nil)
	s1 := r.agent.stream(t, 1)
	s1.send(subscribed())
	s1.send(launchEvent("t1"))
	starting := r.agent.update(t, "t1", mesos.TASK_STARTING)
	running := r.agent.update(t, "t1", mesos.TASK_RUNNING)
	if len(starting.UUID) != 16 || starting.GetSource() != mesos.SOURCE_EXECUTOR || starting.GetExecutorID().GetValue() != "exec-1" || starting.Timestamp == nil {
		t.Fatalf("bad status %+v", starting)
	}

	r.agent.mu.Lock()
	r.agent.failUpdates = true
	r.agent.failSubs = 2 // the agent is down for two attempts
	r.agent.mu.Unlock()
	w.end(nil)
	// The FINISHED update fails (more than once: it is retried while the
	// stream lasts).
	r.agent.waitFor(t, "failed UPDATEs", func() bool { return r.agent.failed >= 2 })
	s1.hangUp()

	r.agent.waitFor(t, "3 SUBSCRIBEs", func() bool { return len(r.agent.subscribes) >= 3 })
	r.agent.mu.Lock()
	sub := r.agent.subscribes[2].Subscribe
	r.agent.failUpdates = false
	r.agent.mu.Unlock()
	if len(sub.UnacknowledgedTasks) != 1 || sub.UnacknowledgedTasks[0].TaskID.Value != "t1" {
		t.Fatalf("unacknowledged tasks %+v", sub.UnacknowledgedTasks)
	}
	var states []mesos.TaskState
	for _, u := range sub.UnacknowledgedUpdates {
		states = append(states, u.Status.GetState())
	}
	if len(states) != 3 || states[0] != mesos.TASK_STARTING || states[1] != mesos.TASK_RUNNING || states[2] != mesos.TASK_FINISHED ||
		string(sub.UnacknowledgedUpdates[0].Status.UUID) != string(starting.UUID) ||
		string(sub.UnacknowledgedUpdates[1].Status.UUID) != string(running.UUID) {
		t.Fatalf("unacknowledged updates %v", states)
	}
	s2 := r.agent.stream(t, 2)
	s2.send(subscribed())
	for _, u := range sub.UnacknowledgedUpdates {
		s2.send(ackEvent(u.Status))
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// Acknowledged updates are forgotten: a later SUBSCRIBE does not carry them.
func TestAcknowledgedForgotten(t *testing.T) {
	w := newFakeWorkload()
	r := startExecutor(t, true, map[string]*fakeWorkload{"t1": w}, nil)
	s1 := r.agent.stream(t, 1)
	s1.send(subscribed())
	s1.send(launchEvent("t1"))
	s1.send(ackEvent(r.agent.update(t, "t1", mesos.TASK_STARTING)))
	running := r.agent.update(t, "t1", mesos.TASK_RUNNING)
	s1.send(&executor.Event{Type: executor.Event_ERROR, Error: &executor.Event_Error{Message: "try again"}})
	r.agent.waitFor(t, "a second SUBSCRIBE", func() bool { return len(r.agent.subscribes) >= 2 })
	r.agent.mu.Lock()
	sub := r.agent.subscribes[1].Subscribe
	r.agent.mu.Unlock()
	if len(sub.UnacknowledgedTasks) != 0 || len(sub.UnacknowledgedUpdates) != 1 || string(sub.UnacknowledgedUpdates[0].Status.UUID) != string(running.UUID) {
		t.Fatalf("SUBSCRIBE after ERROR: %d tasks, updates %+v", len(sub.UnacknowledgedTasks), sub.UnacknowledgedUpdates)
	}
	if len(w.stopGraces()) != 0 {
		t.Fatal("the workload was stopped by a re-subscription")
	}
}

// Without checkpointing, losing the agent stops the workloads and ends Run.
func TestNoCheckpointExitsOnDisconnect(t *testing.T) {
	w := newFakeWorkload()
	r := startExecutor(t, false, map[string]*fakeWorkload{"t1": w}, nil)
	s1 := r.agent.stream(t, 1)
	s1.send(subscribed())
	s1.send(launchEvent("t1"))
	r.agent.update(t, "t1", mesos.TASK_RUNNING)
	s1.hangUp()
	if err := r.wait(t); !errors.Is(err, ErrAgentLost) {
		t.Fatalf("Run: %v", err)
	}
	if len(w.stopGraces()) == 0 {
		t.Fatal("workload left running")
	}
}

// With checkpointing the executor gives up after the recovery timeout, and
// stops its workloads.
func TestRecoveryTimeout(t *testing.T) {
	w := newFakeWorkload()
	r := startExecutor(t, true, map[string]*fakeWorkload{"t1": w}, func(c *Config) { c.RecoveryTimeout = 200 * time.Millisecond })
	s1 := r.agent.stream(t, 1)
	s1.send(subscribed())
	s1.send(launchEvent("t1"))
	r.agent.update(t, "t1", mesos.TASK_RUNNING)
	r.agent.mu.Lock()
	r.agent.failSubs = -1
	r.agent.mu.Unlock()
	s1.hangUp()
	if err := r.wait(t); !errors.Is(err, ErrAgentLost) {
		t.Fatalf("Run: %v", err)
	}
	if len(w.stopGraces()) == 0 {
		t.Fatal("workload left running")
	}
}

// KILL stops within the kill policy's grace; a workload's own end and a
// failed start are reported with their errors; task groups fail.
func TestTaskOutcomes(t *testing.T) {
	killed, fails, badStart := newFakeWorkload(), newFakeWorkload(), newFakeWorkload()
	badStart.startErr = errors.New("no mysqld here")
	r := startExecutor(t, true, map[string]*fakeWorkload{"killed": killed, "fails": fails, "bad": badStart}, nil)
	s := r.agent.stream(t, 1)
	s.send(subscribed())
	for _, id := range []string{"killed", "fails", "bad", "unknown"} {
		s.send(launchEvent(id))
	}
	s.send(&executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{
		Tasks: []mesos.TaskInfo{{Name: "g", TaskID: mesos.TaskID{Value: "g1"}, AgentID: mesos.AgentID{Value: "agent-1"}}}}}})
	r.agent.update(t, "killed", mesos.TASK_RUNNING)
	r.agent.update(t, "fails", mesos.TASK_RUNNING)
	s.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "killed"},
		KillPolicy: &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Second)}}}})
	r.agent.update(t, "killed", mesos.TASK_KILLED)
	if g := killed.stopGraces(); len(g) == 0 || g[0] != time.Second {
		t.Fatalf("stop graces %v", g)
	}
	fails.end(errors.New("mysqld crashed"))
	if st := r.agent.update(t, "fails", mesos.TASK_FAILED); st.GetMessage() != "mysqld crashed" {
		t.Fatalf("message %q", st.GetMessage())
	}
	if st := r.agent.update(t, "bad", mesos.TASK_FAILED); st.GetMessage() != "no mysqld here" {
		t.Fatalf("message %q", st.GetMessage())
	}
	if st := r.agent.update(t, "unknown", mesos.TASK_FAILED); st.GetMessage() != `task names no workload: give it data {"workload": KIND} or the label mysos.io/workload=KIND (known workloads: hold)` {
		t.Fatalf("message %q", st.GetMessage())
	}
	if st := r.agent.update(t, "g1", mesos.TASK_FAILED); st.GetMessage() != "task groups are not supported" {
		t.Fatalf("message %q", st.GetMessage())
	}
}

// SHUTDOWN kills every task, also one still starting, then Run returns nil.
func TestShutdown(t *testing.T) {
	up, slow := newFakeWorkload(), newFakeWorkload()
	slow.startGate = make(chan struct{})
	r := startExecutor(t, true, map[string]*fakeWorkload{"up": up, "slow": slow}, nil)
	s := r.agent.stream(t, 1)
	s.send(subscribed())
	s.send(launchEvent("up"))
	s.send(launchEvent("slow"))
	r.agent.update(t, "up", mesos.TASK_RUNNING)
	r.agent.update(t, "slow", mesos.TASK_STARTING)
	s.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.agent.update(t, "up", mesos.TASK_KILLED)
	r.agent.update(t, "slow", mesos.TASK_KILLED)
	if len(up.stopGraces()) == 0 || len(slow.stopGraces()) == 0 {
		t.Fatal("a workload was not stopped")
	}
}

func TestWorkloadKind(t *testing.T) {
	v := "hold"
	for _, c := range []struct {
		task mesos.TaskInfo
		kind string
		err  bool
	}{
		{mesos.TaskInfo{Data: []byte(`{"workload":"mysqld","x":1}`)}, "mysqld", false},
		{mesos.TaskInfo{Labels: &mesos.Labels{Labels: []mesos.Label{{Key: WorkloadLabel, Value: &v}}}}, "hold", false},
		{mesos.TaskInfo{Data: []byte(`{"workload":"mysqld"}`), Labels: &mesos.Labels{Labels: []mesos.Label{{Key: WorkloadLabel, Value: &v}}}}, "mysqld", false},
		{mesos.TaskInfo{Data: []byte(`not json`)}, "", true},
		{mesos.TaskInfo{Data: []byte(`{}`)}, "", true},
		{mesos.TaskInfo{}, "", true},
	} {
		kind, err := WorkloadKind(c.task)
		if kind != c.kind || (err != nil) != c.err {
			t.Errorf("%s: got %q, %v", c.task.Data, kind, err)
		}
	}
}

// healthWorkload is a fake workload whose health the test sets.
type healthWorkload struct {
	*fakeWorkload
	mu  sync.Mutex
	err error
}

func (w *healthWorkload) Healthy(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *healthWorkload) set(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// TestHealthChangesAreReported: a workload's health is checked
// periodically and each change goes out as a TASK_RUNNING update with
// healthy set; an unchanged health sends nothing.
func TestHealthChangesAreReported(t *testing.T) {
	w := &healthWorkload{fakeWorkload: newFakeWorkload()}
	r := startExecutor(t, true, nil, func(c *Config) {
		c.HealthInterval = 5 * time.Millisecond
		c.Factory = func(mesos.TaskInfo, string) (Workload, error) { return w, nil }
	})
	s := r.agent.stream(t, 1)
	s.send(subscribed())
	s.send(launchEvent("db"))
	healthUpdates := func() []string {
		var out []string
		for _, u := range r.agent.updates {
			if h := u.Status.Healthy; h != nil {
				out = append(out, fmt.Sprintf("%v %s", *h, u.Status.GetMessage()))
			}
		}
		return out
	}
	r.agent.waitFor(t, "a healthy report", func() bool { return len(healthUpdates()) == 1 })
	w.set(errors.New("no answer on the socket"))
	r.agent.waitFor(t, "an unhealthy report", func() bool { return len(healthUpdates()) == 2 })
	w.set(nil)
	r.agent.waitFor(t, "healthy again", func() bool { return len(healthUpdates()) == 3 })
	r.agent.mu.Lock()
	got := healthUpdates()
	r.agent.mu.Unlock()
	want := []string{"true ", "false health check failed: no answer on the socket", "true "}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("health updates %q; want %q", got, want)
	}
}
