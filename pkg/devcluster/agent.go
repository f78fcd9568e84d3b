package devcluster

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Agent is one Mesos agent: it registers with the master over a link, runs
// executors as real local processes (custom executors speak the v1 executor
// HTTP API served by ServeHTTP; command tasks run under a built-in command
// executor), keeps a reliable status update stream per task, manages
// persistent volumes, and checkpoints everything of checkpointing frameworks
// under WorkDir so that a new Agent on the same WorkDir recovers it.
//
// Locking: a.mu guards all state. Nothing blocks while holding it: messages
// to the master go through the link's mailbox and events to executors
// through each connection's queue, so ordering is kept without I/O under the
// lock.
type Agent struct {
	cfg      AgentConfig
	log      *slog.Logger
	launcher Launcher
	host     string
	port     int
	started  time.Time

	mu           sync.Mutex
	info         mesos.AgentInfo // ID set once registered
	checkpointed []mesos.Resource
	frameworks   map[string]*agentFramework
	completedFws []*agentFramework
	streams      map[streamKey]*updateStream
	link         *link
	registered   bool
	lastPing     time.Time
	lastRegister time.Time
	regBackoff   time.Duration
	// recovering is true from NewAgent until recovered executors
	// re-subscribed or ExecutorReregistration passed; registration with the
	// master waits for it, as in Mesos.
	recovering    bool
	recoveryTimer *time.Timer
	// refused is set when the master answered msgShutdownAgent (the agent
	// was marked gone): executors are shut down and the agent no longer
	// registers.
	refused     bool
	closed      bool
	closing     chan struct{}
	ck          *ckState // checkpoint log (checkpoint.go)
	fetchCache  *fetchCache
	loopStarted bool
	wg          sync.WaitGroup
}

type agentFramework struct {
	info               mesos.FrameworkInfo
	executors          map[string]*agentExecutor
	completedExecutors []*agentExecutor
	terminating        bool
}

func (f *agentFramework) id() string { return f.info.GetID().GetValue() }

func (f *agentFramework) checkpoint() bool { return f.info.GetCheckpoint() }

func (f *agentFramework) hasCapability(c mesos.FrameworkInfo_Capability_Type) bool {
	for _, cp := range f.info.Capabilities {
		if cp.Type == c {
			return true
		}
	}
	return false
}

// NewAgent creates an agent and recovers the checkpointed state found in
// cfg.WorkDir (agent id, checkpointed resources, frameworks, executors,
// tasks and status update streams of checkpointing frameworks). Recovered
// executors get Timeouts.ExecutorReregistration to re-subscribe before they
// are killed; the agent registers with the master only after that.
func NewAgent(cfg AgentConfig, log *slog.Logger) (*Agent, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.Launcher == nil {
		cfg.Launcher = LocalLauncher{}
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	if cfg.WorkDir == "" {
		return nil, fmt.Errorf("agent: WorkDir is required")
	}
	wd, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	cfg.WorkDir = wd
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen port %q: %w", portStr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = host
	}
	resources, err := ParseResources(cfg.Resources)
	if err != nil {
		return nil, err
	}
	attributes, err := ParseAttributes(cfg.Attributes)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:        cfg,
		fetchCache: newFetchCache(filepath.Join(cfg.WorkDir, "fetch-cache")),
		log:        log.With("agent", cfg.Hostname),
		launcher:   cfg.Launcher,
		host:       host,
		port:       port,
		started:    time.Now(),
		frameworks: map[string]*agentFramework{},
		streams:    map[streamKey]*updateStream{},
		closing:    make(chan struct{}),
		info: mesos.AgentInfo{
			Hostname:   cfg.Hostname,
			Port:       aptr(int32(port)),
			Resources:  resources,
			Attributes: attributes,
		},
	}
	if err := a.recover(); err != nil {
		return nil, fmt.Errorf("agent: recover from %s: %w", cfg.WorkDir, err)
	}
	return a, nil
}

// ID is the agent id the master assigned ("" before registration).
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.info.GetID().GetValue()
}

// endpoint is host:port of this agent's HTTP API (MESOS_AGENT_ENDPOINT).
func (a *Agent) endpoint() string { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// Connect attaches the agent to a master through l and (re-)registers. It
// is called again with a new link after a master restart.
func (a *Agent) Connect(l *link) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.link = l
	a.registered = false
	a.lastPing = time.Now()
	if !a.recovering && !a.refused {
		a.sendRegisterLocked()
	}
	if !a.loopStarted {
		a.loopStarted = true
		a.wg.Add(1)
		go a.registrationLoop()
	}
}

// registrationLoop re-sends msgRegisterAgent until msgRegistered arrives,
// and again whenever the master's pings stop for
// AgentPing*MaxAgentPings (master gone, or a healed partition).
func (a *Agent) registrationLoop() {
	defer a.wg.Done()
	interval := a.cfg.Timeouts.AgentPing
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.closing:
			return
		case <-t.C:
		}
		a.mu.Lock()
		if a.link != nil && !a.recovering && !a.refused {
			max := a.cfg.Timeouts.MaxAgentPings
			if max <= 0 {
				max = 5
			}
			if a.registered && time.Since(a.lastPing) > time.Duration(max)*interval {
				a.log.Info("no ping from master, re-registering")
				a.registered = false
			}
			// Unanswered registrations are repeated with a backoff from
			// AgentPing up to AgentPing*MaxAgentPings, so that a slow master
			// does not see a burst of re-registrations.
			if !a.registered && time.Since(a.lastRegister) >= a.regBackoff {
				a.sendRegisterLocked()
				a.regBackoff *= 2
				if limit := time.Duration(max) * interval; a.regBackoff > limit {
					a.regBackoff = limit
				}
			}
		}
		a.mu.Unlock()
	}
}

func (a *Agent) sendRegisterLocked() {
	if a.link == nil || a.closed || a.refused {
		return
	}
	a.lastRegister = time.Now()
	if a.regBackoff == 0 {
		a.regBackoff = a.cfg.Timeouts.AgentPing
	}
	msg := msgRegisterAgent{
		Info:                  a.agentInfoLocked(),
		CheckpointedResources: append([]mesos.Resource(nil), a.checkpointed...),
	}
	for _, fw := range a.frameworks {
		reported := false
		for _, ex := range fw.executors {
			if ex.state == execTerminated && len(ex.tasks) == 0 {
				continue
			}
			if !ex.commandTask {
				msg.Executors = append(msg.Executors, ex.info)
			}
			for _, t := range ex.tasks {
				msg.Tasks = append(msg.Tasks, a.taskReportLocked(fw, ex, t))
			}
			reported = true
		}
		if reported {
			msg.Frameworks = append(msg.Frameworks, fw.info)
		}
	}
	a.link.sendToMaster(msg)
}

func (a *Agent) agentInfoLocked() mesos.AgentInfo {
	info := a.info
	info.Resources = append([]mesos.Resource(nil), a.info.Resources...)
	return info
}

// HandleMasterMessage handles one message from the master; the link calls
// it serially.
func (a *Agent) HandleMasterMessage(msg any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	switch m := msg.(type) {
	case msgRegistered:
		a.onRegisteredLocked(m)
	case *msgRegistered:
		a.onRegisteredLocked(*m)
	case msgPing:
		a.lastPing = time.Now()
		if a.link != nil && a.info.ID != nil {
			a.link.sendToMaster(msgPong{AgentID: *a.info.ID})
		}
	case msgRunTasks:
		a.runTasksLocked(m)
	case *msgRunTasks:
		a.runTasksLocked(*m)
	case msgKillTask:
		a.killTaskLocked(m)
	case msgShutdownExecutor:
		a.shutdownExecutorLocked(m.FrameworkID.Value, m.ExecutorID.Value)
	case msgShutdownFramework:
		a.shutdownFrameworkLocked(m.FrameworkID.Value)
	case msgFrameworkToExecutor:
		a.frameworkMessageLocked(m)
	case msgAcknowledge:
		a.acknowledgeLocked(m.FrameworkID.Value, m.TaskID.Value, m.UUID)
	case msgCheckpointResources:
		a.checkpointResourcesLocked(m.Resources)
	case msgShutdownAgent:
		a.shutdownAgentLocked(m.Message)
	default:
		a.log.Warn("unknown master message", "type", fmt.Sprintf("%T", msg))
	}
}

// shutdownAgentLocked obeys the master's refusal (the agent was marked
// gone), as a Mesos agent obeys ShutdownMessage: every framework's executors
// are shut down and the agent stops registering. Its work dir, volumes
// included, stays on disk; an Agent started again on it keeps the refused
// id and is refused again.
func (a *Agent) shutdownAgentLocked(msg string) {
	if a.refused {
		return
	}
	a.log.Warn("master asked this agent to shut down", "message", msg)
	a.refused = true
	a.registered = false
	ids := make([]string, 0, len(a.frameworks))
	for id := range a.frameworks {
		ids = append(ids, id)
	}
	for _, id := range ids {
		a.shutdownFrameworkLocked(id)
	}
}

// Refused reports whether the master refused this agent (marked it gone).
func (a *Agent) Refused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

func (a *Agent) onRegisteredLocked(m msgRegistered) {
	id := m.AgentID
	if a.info.ID != nil && a.info.ID.Value != id.Value {
		a.log.Warn("master assigned a different agent id", "old", a.info.ID.Value, "new", id.Value)
	}
	a.info.ID = &mesos.AgentID{Value: id.Value}
	first := !a.registered
	a.registered = true
	a.regBackoff = 0
	a.lastPing = time.Now()
	a.saveCheckpointLocked()
	if first {
		a.log.Info("registered with master", "id", id.Value)
		// Resume the status update streams: their heads go out again now.
		a.flushStreamsLocked()
	}
	for _, rc := range m.Reconcile {
		a.reconcileTasksLocked(rc)
	}
}

// reconcileTasksLocked answers the master about tasks it placed on this
// agent that the re-registration did not report, as Mesos'
// Slave::reregistered does: a task the agent knows (its launch arrived
// after the report was sent) needs no answer, its own updates follow; one
// it does not know (the launch was lost) ends with a reliable TASK_DROPPED,
// or TASK_LOST for a framework that is not partition-aware.
func (a *Agent) reconcileTasksLocked(rc msgReconcileTasks) {
	fwID := rc.Framework.GetID().GetValue()
	for _, id := range rc.TaskIDs {
		if _, _, t := a.findTaskLocked(fwID, id.Value); t != nil || a.pendingUpdatesLocked(fwID, id.Value) {
			continue // known, or already answered (a repeated registration)
		}
		fw := a.frameworks[fwID]
		if fw == nil {
			fw = a.frameworkLocked(rc.Framework)
		}
		state := mesos.TASK_LOST
		if (&agentFramework{info: rc.Framework}).hasCapability(mesos.FrameworkInfo_Capability_PARTITION_AWARE) {
			state = mesos.TASK_DROPPED
		}
		a.log.Warn("reconciling a task unknown to the agent", "framework", fwID, "task", id.Value, "state", state.String())
		a.statusUpdateLocked(fw, nil, agentStatus(id.Value, state, mesos.REASON_RECONCILIATION,
			"Reconciliation: task unknown to the agent"))
	}
}

// Close stops the agent. With killExecutors false (an agent restart) the
// executors of checkpointing frameworks keep running and re-subscribe to the
// next Agent on the same WorkDir and address; the others are killed. With
// true every executor is killed and Close waits (a few seconds at most) for
// the processes to exit.
func (a *Agent) Close(killExecutors bool) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.closing)
	a.closeCheckpointLocked()
	if a.recoveryTimer != nil {
		a.recoveryTimer.Stop()
	}
	for _, s := range a.streams {
		s.stopTimer()
	}
	var waitFor []*procEntry
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			ex.stopTimers()
			if ex.conn != nil {
				ex.conn.close()
				ex.conn = nil
			}
			if ex.proc == nil {
				ex.cancelFetch()
			}
			if killExecutors || !fw.checkpoint() {
				if ex.proc != nil {
					// SIGTERM first, as when a Mesos agent shuts an
					// executor down: its tasks (a mysqld) stop cleanly.
					_ = ex.proc.signal(syscall.SIGTERM)
					waitFor = append(waitFor, ex.proc)
				}
				ex.cancelFetch()
			}
		}
	}
	grace := a.cfg.Timeouts.ExecutorShutdownGrace
	a.mu.Unlock()
	waitExited(waitFor, grace)
	for _, p := range waitFor {
		_ = p.signal(sigKILL)
	}
	waitExited(waitFor, 5*time.Second)
	a.wg.Wait()
}

// waitExited waits until every process exited, for d at most.
func waitExited(procs []*procEntry, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.done:
		case <-deadline.C:
			return
		}
	}
}
