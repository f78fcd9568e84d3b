package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
)

// Config configures an Executor. ConfigFromEnv fills it from the
// environment the agent gives executors.
type Config struct {
	FrameworkID string
	ExecutorID  string
	// Sandbox is the executor's sandbox directory (MESOS_SANDBOX).
	Sandbox string
	// Checkpoint: the framework checkpoints, so the executor outlives its
	// agent for up to RecoveryTimeout, re-subscribing with a backoff capped
	// by SubscriptionBackoffMax.
	Checkpoint             bool
	RecoveryTimeout        time.Duration
	SubscriptionBackoffMax time.Duration
	// ShutdownGracePeriod is how long the agent waits after SHUTDOWN
	// before it kills the executor (MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD).
	ShutdownGracePeriod time.Duration
	// RetryInterval is how soon an UPDATE the agent did not take is sent
	// again while subscribed (default 1s).
	RetryInterval time.Duration
	// HealthInterval spaces the health checks of workloads that have them
	// (default DefaultHealthInterval).
	HealthInterval time.Duration

	Agent   Agent
	Factory Factory
	Logger  *slog.Logger
}

// Defaults for what the environment may leave out.
const (
	DefaultKillGrace        = 3 * time.Second
	DefaultShutdownGrace    = 5 * time.Second
	DefaultRecoveryTimeout  = 15 * time.Minute
	DefaultBackoffMax       = 2 * time.Second
	DefaultRetryInterval    = time.Second
	initialSubscribeBackoff = 100 * time.Millisecond
)

// ErrAgentLost is returned by Run when the executor gave up on its agent.
var ErrAgentLost = errors.New("lost the agent")

// ConfigFromEnv reads the MESOS_* environment through mesos-go's
// executor/config and returns a Config speaking HTTP to the agent with the
// built-in workloads.
func ConfigFromEnv() (Config, error) {
	c, err := config.FromEnv()
	if err != nil {
		return Config{}, err
	}
	sandbox := c.Sandbox
	if sandbox == "" {
		sandbox = c.Directory
	}
	return Config{
		FrameworkID:            c.FrameworkID,
		ExecutorID:             c.ExecutorID,
		Sandbox:                sandbox,
		Checkpoint:             c.Checkpoint,
		RecoveryTimeout:        c.RecoveryTimeout,
		SubscriptionBackoffMax: c.SubscriptionBackoffMax,
		ShutdownGracePeriod:    c.ExecutorShutdownGracePeriod,
		Agent:                  NewHTTPAgent(c.AgentEndpoint, DefaultCallTimeout),
		Factory:                Builtin(),
	}, nil
}

// Main runs the executor of this process, configured from the
// environment, until it is done, and returns the process's exit code.
func Main(ctx context.Context, log *slog.Logger) int {
	cfg, err := ConfigFromEnv()
	if err != nil {
		log.Error("bad executor environment", "err", err)
		return 2
	}
	cfg.Logger = log
	e, err := New(cfg)
	if err != nil {
		log.Error("cannot start the executor", "err", err)
		return 2
	}
	if err := e.Run(ctx); err != nil {
		log.Error("executor ends", "err", err)
		return 1
	}
	log.Info("executor ends")
	return 0
}

// Executor runs the tasks an agent gives it; see the package comment.
type Executor struct {
	cfg Config
	log *slog.Logger

	// Everything below belongs to Run's goroutine.
	tasks    map[string]*task
	updates  []*pendingUpdate // not yet acknowledged, oldest first
	launched int
	shutdown bool

	stream     EventStream
	events     chan streamItem
	streamQuit chan struct{}
	subscribed bool
	lostAt     time.Time // since when the executor has had no subscription
	backoff    time.Duration
	reconnect  *time.Timer
	retry      *time.Timer

	notes chan note
	quit  chan struct{} // closed when Run returns: workload goroutines stop posting
}

type phase int

const (
	starting phase = iota // Workload.Start runs
	running               // up, TASK_RUNNING issued
	stopping              // Workload.Stop runs
	ended                 // terminal update issued
)

type task struct {
	info        mesos.TaskInfo
	seq         int
	w           Workload // nil if it could not be built
	phase       phase
	killed      bool // a KILL or SHUTDOWN asked for its end
	grace       time.Duration
	acked       bool // the agent acknowledged an update of it
	cancelStart context.CancelFunc
	started     chan struct{} // closed when Start returned
	stopOnce    sync.Once
	stopped     chan struct{} // closed when Stop returned
	healthy     *bool         // the last health reported, nil before the first check
}

type pendingUpdate struct {
	upd  executor.Call_Update
	sent bool // the agent took it (UPDATE answered, or in a SUBSCRIBE it answered)
}

type noteKind int

const (
	noteStarted noteKind = iota
	noteEnded
	noteStopped
	noteHealth
)

type note struct {
	kind noteKind
	t    *task
	err  error
}

type streamItem struct {
	ev  *executor.Event
	err error
}

// New checks cfg and makes an Executor.
func New(cfg Config) (*Executor, error) {
	if cfg.FrameworkID == "" || cfg.ExecutorID == "" {
		return nil, errors.New("executor: framework and executor ids are required")
	}
	if cfg.Agent == nil || cfg.Factory == nil {
		return nil, errors.New("executor: Agent and Factory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownGracePeriod <= 0 {
		cfg.ShutdownGracePeriod = DefaultShutdownGrace
	}
	if cfg.RecoveryTimeout <= 0 {
		cfg.RecoveryTimeout = DefaultRecoveryTimeout
	}
	if cfg.SubscriptionBackoffMax <= 0 {
		cfg.SubscriptionBackoffMax = DefaultBackoffMax
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	return &Executor{
		cfg:   cfg,
		log:   cfg.Logger.With("executor", cfg.ExecutorID),
		tasks: map[string]*task{},
		notes: make(chan note),
		quit:  make(chan struct{}),
	}, nil
}

// Run subscribes to the agent and serves it until the executor is done:
// nil after SHUTDOWN, after its tasks ended and were acknowledged, or when
// ctx is cancelled (its tasks are then reported TASK_KILLED as far as the
// agent can be reached); ErrAgentLost (wrapped) when it gave up on the
// agent. Every workload is stopped before Run returns. Run may be called
// once.
func (e *Executor) Run(ctx context.Context) (err error) {
	defer func() {
		e.closeStream()
		close(e.quit)
		e.stopAll()
		if e.retry != nil {
			e.retry.Stop()
		}
		if e.reconnect != nil {
			e.reconnect.Stop()
		}
	}()
	e.lostAt = time.Now()
	e.scheduleReconnect(0)
	for {
		if e.finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			e.log.Info("interrupted: stopping every task")
			e.stopAll()
			for _, t := range e.sortedTasks() {
				if t.phase != ended {
					t.phase = ended
					e.update(t, mesos.TASK_KILLED, "executor interrupted")
				}
			}
			return nil
		case it := <-e.events:
			if it.err != nil {
				if err := e.disconnected(it.err); err != nil {
					return err
				}
				continue
			}
			e.handle(it.ev)
		case n := <-e.notes:
			e.handleNote(n)
		case <-timerC(e.retry):
			e.retry = nil
			e.flush()
		case <-timerC(e.reconnect):
			e.reconnect = nil
			if err := e.connect(ctx); err != nil {
				return err
			}
		}
	}
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// finished says whether the executor's work is over.
func (e *Executor) finished() bool {
	if e.shutdown {
		for _, t := range e.tasks {
			if t.phase != ended {
				return false
			}
		}
		for _, p := range e.updates {
			if !p.sent {
				return false
			}
		}
		return true
	}
	return e.launched > 0 && len(e.tasks) == 0 && len(e.updates) == 0
}

// ---- the subscription -----------------------------------------------------

func (e *Executor) newCall(typ executor.Call_Type) *executor.Call {
	return &executor.Call{
		Type:        typ,
		FrameworkID: mesos.FrameworkID{Value: e.cfg.FrameworkID},
		ExecutorID:  mesos.ExecutorID{Value: e.cfg.ExecutorID},
	}
}

// subscribeCall is a SUBSCRIBE carrying the tasks without an acknowledged
// update and every unacknowledged update, oldest first.
func (e *Executor) subscribeCall() *executor.Call {
	var tasks []mesos.TaskInfo
	for _, t := range e.sortedTasks() {
		if !t.acked {
			tasks = append(tasks, t.info)
		}
	}
	var ups []executor.Call_Update
	for _, p := range e.updates {
		ups = append(ups, p.upd)
	}
	c := calls.Subscribe(tasks, ups)
	c.FrameworkID = mesos.FrameworkID{Value: e.cfg.FrameworkID}
	c.ExecutorID = mesos.ExecutorID{Value: e.cfg.ExecutorID}
	return c
}

func (e *Executor) connect(ctx context.Context) error {
	if time.Since(e.lostAt) >= e.cfg.RecoveryTimeout {
		return fmt.Errorf("%w: no subscription for %v", ErrAgentLost, e.cfg.RecoveryTimeout)
	}
	call := e.subscribeCall()
	e.log.Info("subscribing", "unacknowledged_tasks", len(call.Subscribe.UnacknowledgedTasks),
		"unacknowledged_updates", len(call.Subscribe.UnacknowledgedUpdates))
	stream, err := e.cfg.Agent.Subscribe(ctx, call)
	if err != nil {
		return e.retrySubscribe(err)
	}
	e.stream = stream
	e.events = make(chan streamItem, 16)
	e.streamQuit = make(chan struct{})
	go readEvents(stream, e.events, e.streamQuit)
	return nil
}

func readEvents(s EventStream, ch chan<- streamItem, quit <-chan struct{}) {
	for {
		ev, err := s.Next()
		select {
		case ch <- streamItem{ev, err}:
		case <-quit:
			return
		}
		if err != nil {
			return
		}
	}
}

func (e *Executor) closeStream() {
	if e.stream == nil {
		return
	}
	close(e.streamQuit)
	_ = e.stream.Close()
	e.stream, e.events, e.streamQuit = nil, nil, nil
	e.subscribed = false
}

// disconnected handles the end of the event stream.
func (e *Executor) disconnected(cause error) error {
	e.log.Warn("disconnected from the agent", "err", cause)
	if e.subscribed {
		// A stream that never got SUBSCRIBED does not count as recovery.
		e.lostAt = time.Now()
		e.backoff = 0
	}
	e.closeStream()
	if e.shutdown {
		return nil // asked to shut down anyway; the agent reports what it did not hear
	}
	return e.retrySubscribe(cause)
}

// retrySubscribe schedules the next SUBSCRIBE, or gives up: at once without
// checkpointing, after the recovery timeout with it.
func (e *Executor) retrySubscribe(cause error) error {
	if !e.cfg.Checkpoint {
		return fmt.Errorf("%w (the framework does not checkpoint): %v", ErrAgentLost, cause)
	}
	if time.Since(e.lostAt) >= e.cfg.RecoveryTimeout {
		return fmt.Errorf("%w: no subscription for %v: %v", ErrAgentLost, e.cfg.RecoveryTimeout, cause)
	}
	e.nextBackoff()
	e.log.Info("re-subscribing", "in", e.backoff, "err", cause)
	e.scheduleReconnect(e.backoff)
	return nil
}

// nextBackoff doubles the wait before the next SUBSCRIBE, from 100ms up to
// SubscriptionBackoffMax; a SUBSCRIBED resets it.
func (e *Executor) nextBackoff() {
	if e.backoff == 0 {
		e.backoff = min(initialSubscribeBackoff, e.cfg.SubscriptionBackoffMax)
	} else {
		e.backoff = min(2*e.backoff, e.cfg.SubscriptionBackoffMax)
	}
}

func (e *Executor) scheduleReconnect(d time.Duration) {
	if e.reconnect != nil {
		e.reconnect.Stop()
	}
	e.reconnect = time.NewTimer(d)
}

// ---- events ---------------------------------------------------------------

func (e *Executor) handle(ev *executor.Event) {
	if err := checkEvent(ev); err != nil {
		e.log.Warn("ignoring a malformed event", "type", ev.GetType().String(), "err", err)
		return
	}
	switch ev.GetType() {
	case executor.Event_SUBSCRIBED:
		s := ev.GetSubscribed()
		e.log.Info("subscribed", "agent", s.AgentInfo.GetID().GetValue(), "framework", s.FrameworkInfo.GetID().GetValue())
		e.subscribed = true
		e.backoff = 0
		// The SUBSCRIBE call handed every pending update to the agent.
		for _, p := range e.updates {
			p.sent = true
		}
		e.flush()
	case executor.Event_LAUNCH:
		e.launch(ev.GetLaunch().Task)
	case executor.Event_LAUNCH_GROUP:
		for _, ti := range ev.GetLaunchGroup().TaskGroup.Tasks {
			t := e.addTask(ti)
			if t == nil {
				continue
			}
			t.phase = ended
			e.update(t, mesos.TASK_FAILED, "task groups are not supported")
		}
	case executor.Event_KILL:
		k := ev.GetKill()
		e.kill(k.TaskID.Value, k.KillPolicy)
	case executor.Event_ACKNOWLEDGED:
		a := ev.GetAcknowledged()
		e.acknowledged(a.TaskID.Value, a.UUID)
	case executor.Event_MESSAGE:
		e.log.Info("message from the framework", "bytes", len(ev.GetMessage().Data))
	case executor.Event_SHUTDOWN:
		e.log.Info("SHUTDOWN: stopping every task")
		e.shutdown = true
		grace := e.cfg.ShutdownGracePeriod * 3 / 4
		for _, t := range e.sortedTasks() {
			e.killTask(t, min(killGrace(nil, t.info), grace))
		}
	case executor.Event_ERROR:
		// Re-subscribe, checkpointing or not; an agent answering every
		// SUBSCRIBE with ERROR meets a growing backoff and, in the end, the
		// recovery timeout.
		if e.subscribed {
			e.lostAt = time.Now()
		}
		e.closeStream()
		e.nextBackoff()
		e.log.Warn("ERROR from the agent: re-subscribing", "message", ev.GetError().Message, "in", e.backoff)
		e.scheduleReconnect(e.backoff)
	case executor.Event_HEARTBEAT:
	default:
		e.log.Warn("ignoring an unknown event", "type", ev.GetType().String())
	}
}

// checkEvent makes sure the message an event's type implies is there.
func checkEvent(ev *executor.Event) error {
	var missing bool
	switch ev.GetType() {
	case executor.Event_SUBSCRIBED:
		missing = ev.Subscribed == nil
	case executor.Event_LAUNCH:
		missing = ev.Launch == nil
	case executor.Event_LAUNCH_GROUP:
		missing = ev.LaunchGroup == nil
	case executor.Event_KILL:
		missing = ev.Kill == nil
	case executor.Event_ACKNOWLEDGED:
		missing = ev.Acknowledged == nil
	case executor.Event_MESSAGE:
		missing = ev.Message == nil
	case executor.Event_ERROR:
		missing = ev.Error == nil
	}
	if missing {
		return errors.New("no body for its type")
	}
	return nil
}

func (e *Executor) addTask(info mesos.TaskInfo) *task {
	id := info.TaskID.Value
	if e.tasks[id] != nil {
		e.log.Warn("ignoring a second launch of a task", "task", id)
		return nil
	}
	e.launched++
	t := &task{info: info, seq: e.launched, started: make(chan struct{}), stopped: make(chan struct{})}
	e.tasks[id] = t
	return t
}

func (e *Executor) launch(info mesos.TaskInfo) {
	t := e.addTask(info)
	if t == nil {
		return
	}
	e.log.Info("launching", "task", info.TaskID.Value)
	e.update(t, mesos.TASK_STARTING, "")
	w, err := e.cfg.Factory(info, e.cfg.Sandbox)
	if err != nil {
		t.phase = ended
		close(t.started)
		close(t.stopped)
		e.update(t, mesos.TASK_FAILED, err.Error())
		return
	}
	t.w = w
	ctx, cancel := context.WithCancel(context.Background())
	t.cancelStart = cancel
	go func() {
		err := w.Start(ctx)
		close(t.started)
		e.post(note{noteStarted, t, err})
	}()
}

func (e *Executor) post(n note) {
	select {
	case e.notes <- n:
	case <-e.quit:
	}
}

// killGrace is the kill policy's grace period: the KILL's, else the
// task's, else 3s.
func killGrace(p *mesos.KillPolicy, info mesos.TaskInfo) time.Duration {
	if p == nil {
		p = info.KillPolicy
	}
	if gp := p.GetGracePeriod(); gp != nil {
		return max(time.Duration(gp.Nanoseconds), 0)
	}
	return DefaultKillGrace
}

func (e *Executor) kill(id string, p *mesos.KillPolicy) {
	t := e.tasks[id]
	if t == nil {
		e.log.Warn("KILL for an unknown task", "task", id)
		return
	}
	e.killTask(t, killGrace(p, t.info))
}

func (e *Executor) killTask(t *task, grace time.Duration) {
	switch t.phase {
	case starting:
		if !t.killed {
			e.log.Info("killing a starting task", "task", t.info.TaskID.Value, "grace", grace)
			t.killed, t.grace = true, grace
			t.cancelStart()
		}
	case running:
		e.log.Info("killing", "task", t.info.TaskID.Value, "grace", grace)
		t.killed, t.phase = true, stopping
		e.stopTask(t, grace)
	}
}

// stopTask stops t's workload in the background, once; noteStopped
// follows.
func (e *Executor) stopTask(t *task, grace time.Duration) {
	t.stopOnce.Do(func() {
		go func() {
			<-t.started
			err := t.w.Stop(grace)
			close(t.stopped)
			e.post(note{noteStopped, t, err})
		}()
	})
}

func (e *Executor) handleNote(n note) {
	t := n.t
	id := t.info.TaskID.Value
	switch n.kind {
	case noteStarted:
		t.cancelStart()
		if t.phase != starting {
			return
		}
		if n.err != nil {
			t.phase = ended
			e.stopTask(t, 0) // Start failed: nothing should run, make sure
			if t.killed {
				e.update(t, mesos.TASK_KILLED, "killed while starting: "+n.err.Error())
			} else {
				e.update(t, mesos.TASK_FAILED, n.err.Error())
			}
			return
		}
		if t.killed {
			t.phase = stopping
			e.stopTask(t, t.grace)
			return
		}
		t.phase = running
		e.update(t, mesos.TASK_RUNNING, "")
		w := t.w
		go func() {
			<-w.Done()
			e.post(note{noteEnded, t, w.Err()})
		}()
		if hc, ok := w.(HealthChecker); ok {
			go e.checkHealth(t, hc)
		}
	case noteEnded:
		if t.phase != running {
			return // being stopped: noteStopped reports it
		}
		t.phase = ended
		e.stopTask(t, 0)
		if n.err != nil {
			e.update(t, mesos.TASK_FAILED, n.err.Error())
		} else {
			e.update(t, mesos.TASK_FINISHED, "")
		}
	case noteHealth:
		healthy := n.err == nil
		if t.phase != running || (t.healthy != nil && *t.healthy == healthy) {
			return
		}
		t.healthy = &healthy
		msg := ""
		if n.err != nil {
			msg = "health check failed: " + n.err.Error()
		}
		e.updateWith(t, mesos.TASK_RUNNING, msg, &healthy)
	case noteStopped:
		if t.phase != stopping {
			return
		}
		t.phase = ended
		msg := ""
		if n.err != nil {
			msg = "stopping: " + n.err.Error()
			e.log.Warn("workload did not stop cleanly", "task", id, "err", n.err)
		}
		e.update(t, mesos.TASK_KILLED, msg)
	}
}

// stopAll stops every workload still alive (within its kill grace, capped by
// the shutdown grace period) and waits until all are gone.
func (e *Executor) stopAll() {
	for _, t := range e.tasks {
		if t.w == nil {
			continue
		}
		t.cancelStart()
		grace := killGrace(nil, t.info)
		if t.killed {
			grace = t.grace
		}
		e.stopTask(t, min(grace, e.cfg.ShutdownGracePeriod))
	}
	for _, t := range e.tasks {
		if t.w != nil {
			<-t.stopped
		}
	}
}

func (e *Executor) sortedTasks() []*task {
	ts := make([]*task, 0, len(e.tasks))
	for _, t := range e.tasks {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq < ts[j].seq })
	return ts
}

// ---- status updates -------------------------------------------------------

// update issues a status update of t and sends it if it can.
func (e *Executor) update(t *task, state mesos.TaskState, message string) {
	e.updateWith(t, state, message, nil)
}

// checkHealth asks the workload how it is, every HealthInterval, until it
// ends or the executor stops.
func (e *Executor) checkHealth(t *task, hc HealthChecker) {
	interval := e.cfg.HealthInterval
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	check := func() {
		ctx, cancel := context.WithTimeout(context.Background(), healthCheckTimeout)
		defer cancel()
		e.post(note{noteHealth, t, hc.Healthy(ctx)})
	}
	check()
	for {
		select {
		case <-t.w.Done():
			return
		case <-e.quit:
			return
		case <-tick.C:
			check()
		}
	}
}

// updateWith sends a status update; healthy, when set, is the task's health.
func (e *Executor) updateWith(t *task, state mesos.TaskState, message string, healthy *bool) {
	id := uuid.New()
	ts := float64(time.Now().UnixNano()) / 1e9
	st := mesos.TaskStatus{
		TaskID:     t.info.TaskID,
		State:      state.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &mesos.ExecutorID{Value: e.cfg.ExecutorID},
		Timestamp:  &ts,
		UUID:       id[:],
		Healthy:    healthy,
	}
	if message != "" {
		st.Message = &message
	}
	e.log.Info("status update", "task", t.info.TaskID.Value, "state", state.String(), "message", message)
	e.updates = append(e.updates, &pendingUpdate{upd: executor.Call_Update{Status: st}})
	e.flush()
}

// flush sends the updates the agent has not taken, in order, while
// subscribed; after a failure it retries later (a new subscription carries
// them anyway).
func (e *Executor) flush() {
	if !e.subscribed {
		return
	}
	for _, p := range e.updates {
		if p.sent {
			continue
		}
		call := e.newCall(executor.Call_UPDATE)
		call.Update = &p.upd
		if err := e.cfg.Agent.Send(context.Background(), call); err != nil {
			e.log.Warn("status update not sent; will retry", "task", p.upd.Status.TaskID.Value,
				"state", p.upd.Status.GetState().String(), "err", err)
			if e.retry == nil {
				e.retry = time.NewTimer(e.cfg.RetryInterval)
			}
			return
		}
		p.sent = true
	}
}

func (e *Executor) acknowledged(taskID string, id []byte) {
	var terminal bool
	for i, p := range e.updates {
		if string(p.upd.Status.UUID) == string(id) {
			terminal = isTerminal(p.upd.Status.GetState())
			e.updates = append(e.updates[:i], e.updates[i+1:]...)
			break
		}
	}
	t := e.tasks[taskID]
	if t == nil {
		return
	}
	t.acked = true
	if !terminal || t.phase != ended {
		return
	}
	for _, p := range e.updates {
		if p.upd.Status.TaskID.Value == taskID {
			return
		}
	}
	delete(e.tasks, taskID)
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}
