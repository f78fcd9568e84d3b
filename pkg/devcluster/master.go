package devcluster

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// defaultVersion is what /version and MasterInfo report unless configured.
const defaultVersion = "1.10.0"

// Master is the dev cluster's Mesos master: the v1 scheduler API in front of
// an allocator, with agents attached through links.
type Master struct {
	cfg      MasterConfig
	timeouts Timeouts
	log      *slog.Logger
	id       string
	info     mesos.MasterInfo
	start    time.Time

	mu          sync.Mutex
	closed      bool
	frameworks  map[string]*mframework
	removed     map[string]*mframework // torn down or timed out
	agents      map[string]*magent     // registered and reachable
	agentByLink map[*link]*magent
	unreachable map[string]time.Time // agent id -> when it was marked unreachable
	gone        map[string]time.Time // agent id -> when it was marked gone
	offers      map[string]*moffer
	reg         *registry

	// Recovery after a master restart or failover (master_failover.go):
	// awaiting holds the registry's agents that have not re-registered yet;
	// recovering is the 503 phase.
	awaiting      map[string]bool
	recovering    bool
	recoveryTimer *time.Timer
	reregTimer    *time.Timer
	nextFW        int
	nextAgent     int
	nextOffer     int
	rr            int

	quit chan struct{}
	wg   sync.WaitGroup
}

type mframework struct {
	id         string
	info       mesos.FrameworkInfo
	roles      []string
	suppressed map[string]bool
	caps       map[mesos.FrameworkInfo_Capability_Type]bool
	stream     *eventStream // nil while disconnected
	failover   *time.Timer
	filters    []*offerFilter
	tasks      map[string]*mtask
	executors  map[string]map[string]*mexecutor // agent id -> executor id
	recovered  bool                             // learned from an agent, not (yet) subscribed here

	registered, reregistered, unregistered time.Time
}

func (fw *mframework) partitionAware() bool {
	return fw.caps[mesos.FrameworkInfo_Capability_PARTITION_AWARE]
}

// send queues an event on the framework's stream; dropped while disconnected.
func (fw *mframework) send(ev *scheduler.Event) {
	if fw.stream != nil {
		fw.stream.push(ev)
	}
}

type mtask struct {
	t               mesos.Task // State is the latest known state
	agentID         string
	role            string
	resources       mesos.Resources // canonical
	status          *mesos.TaskStatus
	unreachableTime *mesos.TimeInfo
}

func (t *mtask) state() mesos.TaskState { return t.t.GetState() }

type mexecutor struct {
	info      mesos.ExecutorInfo
	resources mesos.Resources // canonical
}

type magent struct {
	id           string
	info         mesos.AgentInfo
	link         *link
	total        mesos.Resources // canonical, checkpointed resources applied
	used         mesos.Resources // canonical; what tasks, executors and offers use (allocator.go)
	inexact      bool            // used is not the exact sum: freeResources walks the items
	missed       int
	ponged       bool
	registered   time.Time
	reregistered time.Time
}

func (a *magent) url() *mesos.URL {
	port := a.info.GetPort()
	return &mesos.URL{
		Scheme: "http",
		Address: mesos.Address{
			Hostname: proto.String(a.info.Hostname),
			IP:       proto.String("127.0.0.1"),
			Port:     port,
		},
		Path: proto.String("/slave(1)"),
	}
}

func (a *magent) checkpointed() []mesos.Resource {
	var out []mesos.Resource
	for _, r := range a.total {
		if isCheckpointed(r) {
			out = append(out, cloneResource(&r))
		}
	}
	return out
}

type moffer struct {
	id        string
	fw        *mframework
	agentID   string
	role      string
	resources mesos.Resources // canonical
	created   time.Time
}

// NewMaster starts a master; cfg.Listen is the address it is served on.
func NewMaster(cfg MasterConfig, log *slog.Logger) *Master {
	if log == nil {
		log = slog.Default()
	}
	t := cfg.Timeouts
	def := DefaultTimeouts()
	if t.Heartbeat <= 0 {
		t.Heartbeat = def.Heartbeat
	}
	if t.AllocationInterval <= 0 {
		t.AllocationInterval = def.AllocationInterval
	}
	if t.AgentPing <= 0 {
		t.AgentPing = def.AgentPing
	}
	if t.MaxAgentPings <= 0 {
		t.MaxAgentPings = def.MaxAgentPings
	}
	if t.AgentReregistration <= 0 {
		t.AgentReregistration = def.AgentReregistration
	}
	if cfg.Version == "" {
		cfg.Version = defaultVersion
	}
	reg := cfg.registry
	if reg == nil {
		reg = newRegistry()
	}
	m := &Master{
		cfg:         cfg,
		timeouts:    t,
		log:         log.With("component", "master"),
		id:          uuid.NewString(),
		start:       time.Now(),
		frameworks:  map[string]*mframework{},
		removed:     map[string]*mframework{},
		agents:      map[string]*magent{},
		agentByLink: map[*link]*magent{},
		unreachable: map[string]time.Time{},
		gone:        map[string]time.Time{},
		offers:      map[string]*moffer{},
		reg:         reg,
		quit:        make(chan struct{}),
	}
	m.info = m.masterInfo()
	m.recoverFromRegistry()
	m.wg.Add(2)
	go m.every(m.timeouts.AllocationInterval, m.allocate)
	go m.every(m.timeouts.AgentPing, m.pingAgents)
	return m
}

// masterInfo describes this master; ip is the IPv4 address in network byte
// order read as a little-endian integer, as Mesos does (127.0.0.1 ->
// 16777343).
func (m *Master) masterInfo() mesos.MasterInfo {
	host, portStr, err := net.SplitHostPort(m.cfg.Listen)
	if err != nil {
		host, portStr = "127.0.0.1", "5050"
	}
	port, _ := strconv.Atoi(portStr)
	ipStr := host
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		if addrs, err := net.LookupIP(host); err == nil {
			for _, a := range addrs {
				if a.To4() != nil {
					ip = a
					break
				}
			}
		}
	}
	if ip == nil || ip.To4() == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	ipStr = ip.To4().String()
	hostname := host
	if hostname == "" || net.ParseIP(hostname) != nil && net.ParseIP(hostname).IsUnspecified() {
		hostname = ipStr
	}
	p := uint32(port)
	return mesos.MasterInfo{
		ID:       m.id,
		IP:       binary.LittleEndian.Uint32(ip.To4()),
		Port:     &p,
		PID:      proto.String(fmt.Sprintf("master@%s:%d", ipStr, port)),
		Hostname: proto.String(hostname),
		Version:  proto.String(m.cfg.Version),
		Address: &mesos.Address{
			Hostname: proto.String(hostname),
			IP:       proto.String(ipStr),
			Port:     int32(port),
		},
		Capabilities: []mesos.MasterInfo_Capability{
			{Type: mesos.MasterInfo_Capability_AGENT_UPDATE},
			{Type: mesos.MasterInfo_Capability_AGENT_DRAINING},
		},
	}
}

// ID is the master's id, the prefix of every framework, agent and offer id.
func (m *Master) ID() string { return m.id }

// Close ends every scheduler stream and stops the master's timers, as a
// master process dying would.
func (m *Master) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.quit)
	m.stopRecoveryTimers()
	for _, fw := range m.frameworks {
		if fw.failover != nil {
			fw.failover.Stop()
		}
		if fw.stream != nil {
			fw.stream.closeNow()
			fw.stream = nil
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func masterNow() *float64 {
	f := float64(time.Now().UnixNano()) / 1e9
	return &f
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_LOST,
		mesos.TASK_ERROR, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// masterStatus builds a status update generated by the master: no uuid,
// SOURCE_MASTER.
func masterStatus(taskID string, state mesos.TaskState, reason mesos.TaskStatus_Reason, msg string, agentID string) mesos.TaskStatus {
	src := mesos.SOURCE_MASTER
	st := mesos.TaskStatus{
		TaskID:    mesos.TaskID{Value: taskID},
		State:     &state,
		Message:   proto.String(msg),
		Source:    &src,
		Reason:    &reason,
		Timestamp: masterNow(),
	}
	if agentID != "" {
		st.AgentID = &mesos.AgentID{Value: agentID}
	}
	return st
}

func updateEvent(st mesos.TaskStatus) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}}
}

// newFramework creates the master's record of a framework. Caller holds m.mu.
func (m *Master) newFramework(id string, info mesos.FrameworkInfo) *mframework {
	fw := &mframework{
		id:         id,
		suppressed: map[string]bool{},
		tasks:      map[string]*mtask{},
		executors:  map[string]map[string]*mexecutor{},
		registered: time.Now(),
	}
	fw.setInfo(info)
	m.frameworks[id] = fw
	return fw
}

func (fw *mframework) setInfo(info mesos.FrameworkInfo) {
	info.ID = &mesos.FrameworkID{Value: fw.id}
	fw.info = info
	fw.caps = map[mesos.FrameworkInfo_Capability_Type]bool{}
	for _, c := range info.Capabilities {
		fw.caps[c.Type] = true
	}
	if fw.caps[mesos.FrameworkInfo_Capability_MULTI_ROLE] {
		fw.roles = append([]string(nil), info.Roles...)
	} else {
		fw.roles = []string{info.GetRole()}
	}
}

// disconnect marks a framework disconnected: offers withdrawn, removal after
// its failover timeout. Caller holds m.mu.
func (m *Master) disconnect(fw *mframework) {
	fw.stream = nil
	fw.unregistered = time.Now()
	m.withdrawOffers(fw)
	if fw.failover != nil {
		fw.failover.Stop()
	}
	d := time.Duration(fw.info.GetFailoverTimeout() * float64(time.Second))
	if d <= 0 {
		m.removeFramework(fw)
		return
	}
	var timer *time.Timer
	timer = time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed || m.frameworks[fw.id] != fw || fw.stream != nil || fw.failover != timer {
			return
		}
		m.log.Info("framework failover timeout", "framework", fw.id)
		m.removeFramework(fw)
	})
	fw.failover = timer
}

// removeFramework tears a framework down everywhere. Caller holds m.mu.
func (m *Master) removeFramework(fw *mframework) {
	m.log.Info("removing framework", "framework", fw.id)
	if fw.failover != nil {
		fw.failover.Stop()
		fw.failover = nil
	}
	m.withdrawOffers(fw)
	if fw.stream != nil {
		fw.stream.closeNow()
		fw.stream = nil
	}
	for _, a := range m.agents {
		a.link.sendToAgent(msgShutdownFramework{FrameworkID: mesos.FrameworkID{Value: fw.id}})
	}
	wasLive := m.frameworks[fw.id] == fw
	delete(m.frameworks, fw.id)
	// Its tasks and executors no longer count against their agents.
	for _, t := range fw.tasks {
		if !wasLive {
			break
		}
		if taskCounted(t) {
			m.allocSub(t.agentID, t.resources)
		}
	}
	for aid, es := range fw.executors {
		for _, e := range es {
			if !wasLive {
				break
			}
			m.allocSub(aid, e.resources)
		}
	}
	fw.unregistered = time.Now()
	m.removed[fw.id] = fw
}

// streamEnded is called when a subscription's HTTP response ends.
func (m *Master) streamEnded(s *eventStream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	fw := m.frameworks[s.fwID]
	if fw == nil || fw.stream != s {
		return
	}
	m.log.Info("framework disconnected", "framework", fw.id)
	m.disconnect(fw)
}

// ---------------------------------------------------------------------------
// Agents.

// HandleAgentMessage processes one agent->master message.
func (m *Master) HandleAgentMessage(from *link, msg any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	switch x := msg.(type) {
	case msgRegisterAgent:
		m.registerAgent(from, &x)
	case *msgRegisterAgent:
		m.registerAgent(from, x)
	case msgPong:
		m.pong(from)
	case *msgPong:
		m.pong(from)
	case msgStatusUpdate:
		m.statusUpdate(from, &x)
	case *msgStatusUpdate:
		m.statusUpdate(from, x)
	case msgExitedExecutor:
		m.exitedExecutor(from, &x)
	case *msgExitedExecutor:
		m.exitedExecutor(from, x)
	case msgExecutorToFramework:
		m.executorMessage(from, &x)
	case *msgExecutorToFramework:
		m.executorMessage(from, x)
	default:
		m.log.Warn("unexpected agent message", "type", fmt.Sprintf("%T", msg))
	}
}

func (m *Master) pong(from *link) {
	if a := m.agentByLink[from]; a != nil {
		a.ponged = true
		a.missed = 0
	}
}

// registerAgent handles registration (no id) and re-registration (id set).
func (m *Master) registerAgent(from *link, r *msgRegisterAgent) {
	info := r.Info
	now := time.Now()
	if info.ID == nil || info.ID.Value == "" {
		id := fmt.Sprintf("%s-S%d", m.id, m.nextAgent)
		m.nextAgent++
		info.ID = &mesos.AgentID{Value: id}
		a := &magent{id: id, info: info, link: from, registered: now, ponged: true,
			total: applyCheckpointed(info.Resources, r.CheckpointedResources)}
		m.agents[id] = a
		m.agentByLink[from] = a
		m.recomputeAllocated(a)
		m.reg.admit(id)
		m.log.Info("agent registered", "agent", id, "hostname", info.Hostname)
		from.sendToAgent(msgRegistered{AgentID: mesos.AgentID{Value: id}})
		return
	}

	id := info.ID.Value
	if _, gone := m.gone[id]; gone || m.reg.isGone(id) {
		m.log.Warn("refusing the re-registration of an agent marked gone", "agent", id, "hostname", info.Hostname)
		from.sendToAgent(msgShutdownAgent{Message: "Agent has been marked gone"})
		return
	}
	old := m.agents[id]
	unreachableSince, wasUnreachable := m.unreachable[id]
	delete(m.unreachable, id)
	checkpointed := r.CheckpointedResources
	if old != nil {
		// Like Mesos (Master::___reregisterSlave), the master keeps its own
		// view of a registered agent's reservations and volumes, and sends
		// it back below: the report may predate operations the master
		// applied and sent after the agent wrote it.
		checkpointed = old.checkpointed()
	}
	a := &magent{id: id, info: info, link: from, registered: now, reregistered: now, ponged: true,
		total: applyCheckpointed(info.Resources, checkpointed)}
	if old != nil {
		a.registered = old.registered
		delete(m.agentByLink, old.link)
		if old.link != from {
			// The agent comes back on a new connection (it restarted):
			// Mesos rescinds an agent's offers when its connection breaks.
			// One that re-registers on the same connection (its pings
			// stopped for a while) keeps them.
			for _, o := range m.offers {
				if o.agentID == id {
					m.removeOffer(o, true)
				}
			}
		}
	}
	m.agents[id] = a
	m.agentByLink[from] = a
	m.reg.admit(id)
	m.agentReregistered(id)
	m.log.Info("agent re-registered", "agent", id, "hostname", info.Hostname, "was_unreachable", wasUnreachable)
	_ = unreachableSince

	fwInfos := map[string]mesos.FrameworkInfo{}
	for _, fi := range r.Frameworks {
		if fi.ID != nil {
			fwInfos[fi.ID.Value] = fi
		}
	}
	lookup := func(fwID string) *mframework {
		if m.removed[fwID] != nil {
			return nil
		}
		fw := m.frameworks[fwID]
		if fw == nil {
			fi, ok := fwInfos[fwID]
			if !ok {
				fi = mesos.FrameworkInfo{User: "unknown", Name: "unknown"}
			}
			fw = m.newFramework(fwID, fi)
			fw.recovered = true
		}
		return fw
	}
	shutdown := map[string]bool{}

	// Executors.
	for _, fw := range m.frameworks {
		delete(fw.executors, id)
	}
	for _, e := range r.Executors {
		fwID := e.GetFrameworkID().GetValue()
		fw := lookup(fwID)
		if fw == nil {
			shutdown[fwID] = true
			continue
		}
		if fw.executors[id] == nil {
			fw.executors[id] = map[string]*mexecutor{}
		}
		fw.executors[id][e.ExecutorID.Value] = &mexecutor{info: e, resources: canonical(e.Resources)}
	}

	// Tasks: the agent's report replaces what the master knew about it.
	reported := map[string]map[string]bool{}
	for _, rt := range r.Tasks {
		fwID := rt.FrameworkID.Value
		fw := lookup(fwID)
		if fw == nil {
			shutdown[fwID] = true
			continue
		}
		if reported[fwID] == nil {
			reported[fwID] = map[string]bool{}
		}
		reported[fwID][rt.TaskID.Value] = true
		prev := fw.tasks[rt.TaskID.Value]
		if prev != nil && prev.agentID != id && taskCounted(prev) {
			m.allocSub(prev.agentID, prev.resources)
		}
		t := adoptTask(fw, id, rt)
		fw.tasks[rt.TaskID.Value] = t
		if wasUnreachable && prev != nil && prev.state() == mesos.TASK_UNREACHABLE || wasUnreachable && prev == nil {
			st := masterStatus(rt.TaskID.Value, t.state(), mesos.REASON_AGENT_REREGISTERED, "Unreachable agent re-reregistered", id)
			if t.status != nil {
				st.ContainerStatus = t.status.ContainerStatus
				st.Healthy = t.status.Healthy
			}
			if rt.ExecutorID != nil {
				st.ExecutorID = rt.ExecutorID
			}
			fw.send(updateEvent(st))
		}
	}
	// Tasks the master placed on this agent that its report lacks. An agent
	// the master knew may have written the report before a launch reached
	// it (the launch is on its way, behind the report): as Mesos does
	// (Master::reconcileKnownSlave), the master keeps those tasks and asks
	// the agent, which ends the ones it does not know. Otherwise the tasks
	// are gone.
	var reconcile []msgReconcileTasks
	for _, fwID := range slices.Sorted(maps.Keys(m.frameworks)) {
		fw := m.frameworks[fwID]
		var ask []mesos.TaskID
		for _, tid := range slices.Sorted(maps.Keys(fw.tasks)) {
			t := fw.tasks[tid]
			if t.agentID != id || reported[fw.id][tid] || isTerminal(t.state()) {
				continue
			}
			if old != nil {
				ask = append(ask, mesos.TaskID{Value: tid})
				continue
			}
			state := mesos.TASK_LOST
			if fw.partitionAware() {
				state = mesos.TASK_GONE
			}
			fw.send(updateEvent(masterStatus(tid, state, mesos.REASON_RECONCILIATION, "Reconciliation: Task is unknown to the agent", id)))
			delete(fw.tasks, tid)
		}
		if len(ask) > 0 {
			m.log.Warn("tasks missing from the re-registering agent's report; reconciling them with the agent", "agent", id,
				"framework", fw.id, "tasks", len(ask))
			reconcile = append(reconcile, msgReconcileTasks{Framework: fw.info, TaskIDs: ask})
		}
	}
	// The agent's report replaced what the master knew: count it afresh.
	m.recomputeAllocated(a)
	from.sendToAgent(msgRegistered{AgentID: mesos.AgentID{Value: id}, Reconcile: reconcile})
	if old != nil {
		from.sendToAgent(msgCheckpointResources{Resources: a.checkpointed()})
	}
	for fwID := range shutdown {
		from.sendToAgent(msgShutdownFramework{FrameworkID: mesos.FrameworkID{Value: fwID}})
	}
}

// adoptTask builds the master's record of a task an agent reports.
func adoptTask(fw *mframework, agentID string, rt mesos.Task) *mtask {
	t := &mtask{t: *proto.Clone(&rt).(*mesos.Task), agentID: agentID, resources: canonical(rt.Resources)}
	t.t.AgentID = mesos.AgentID{Value: agentID}
	if t.t.State == nil {
		s := mesos.TASK_STAGING
		t.t.State = &s
	}
	if n := len(rt.Statuses); n > 0 {
		st := rt.Statuses[n-1]
		t.status = &st
	}
	t.t.Statuses = nil
	for _, r := range rt.Resources {
		if r.AllocationInfo != nil {
			t.role = r.AllocationInfo.GetRole()
			break
		}
	}
	if t.role == "" && len(fw.roles) > 0 {
		t.role = fw.roles[0]
	}
	return t
}

// every runs fn each interval until the master closes: the allocator and
// the agent health checks.
func (m *Master) every(interval time.Duration, fn func()) {
	defer m.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
			fn()
		}
	}
}

func (m *Master) pingAgents() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	ids := slices.Sorted(maps.Keys(m.agents))
	for _, id := range ids {
		a := m.agents[id]
		if !a.ponged {
			a.missed++
			if a.missed >= m.timeouts.MaxAgentPings {
				m.markUnreachable(a)
				continue
			}
		}
		a.ponged = false
		a.link.sendToAgent(msgPing{})
	}
}

// markUnreachable removes an agent that stopped answering pings: its offers
// are rescinded, its tasks become TASK_UNREACHABLE (TASK_LOST for frameworks
// that are not partition-aware) and every framework gets FAILURE{agent_id}.
// Caller holds m.mu.
func (m *Master) markUnreachable(a *magent) {
	m.log.Warn("agent unreachable", "agent", a.id, "missed_pings", a.missed)
	now := time.Now()
	for _, o := range m.offers {
		if o.agentID == a.id {
			m.removeOffer(o, true)
		}
	}
	delete(m.agents, a.id)
	delete(m.agentByLink, a.link)
	m.unreachable[a.id] = now
	m.reg.markUnreachable(a.id, now)
	ut := &mesos.TimeInfo{Nanoseconds: now.UnixNano()}
	fwIDs := slices.Sorted(maps.Keys(m.frameworks))
	for _, fwID := range fwIDs {
		fw := m.frameworks[fwID]
		for tid, t := range fw.tasks {
			if t.agentID != a.id {
				continue
			}
			if isTerminal(t.state()) {
				delete(fw.tasks, tid)
				continue
			}
			s := mesos.TASK_UNREACHABLE
			t.t.State = &s
			t.unreachableTime = ut
			state := mesos.TASK_LOST
			if fw.partitionAware() {
				state = mesos.TASK_UNREACHABLE
			}
			st := masterStatus(tid, state, mesos.REASON_AGENT_REMOVED, "health check timed out", a.id)
			if fw.partitionAware() {
				st.UnreachableTime = ut
			}
			fw.send(updateEvent(st))
		}
		delete(fw.executors, a.id)
	}
	for _, fwID := range fwIDs {
		m.frameworks[fwID].send(&scheduler.Event{Type: scheduler.Event_FAILURE,
			Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: a.id}}})
	}
}

// statusUpdate forwards an agent's status update to the framework and tracks
// the task's state; terminal states free the task's resources at once.
func (m *Master) statusUpdate(from *link, u *msgStatusUpdate) {
	a := m.agentByLink[from]
	if a == nil {
		m.log.Debug("status update from an unregistered agent dropped", "task", u.Status.TaskID.Value)
		return
	}
	fwID := u.FrameworkID.Value
	fw := m.frameworks[fwID]
	if fw == nil {
		if m.removed[fwID] != nil {
			from.sendToAgent(msgShutdownFramework{FrameworkID: u.FrameworkID})
		}
		return
	}
	st := *proto.Clone(&u.Status).(*mesos.TaskStatus)
	if st.AgentID == nil {
		st.AgentID = &mesos.AgentID{Value: a.id}
	}
	if st.Timestamp == nil {
		st.Timestamp = masterNow()
	}
	if t := fw.tasks[st.TaskID.Value]; t != nil && st.State != nil {
		s := *st.State
		before := taskCounted(t)
		t.t.State = &s
		if after := taskCounted(t); before && !after {
			m.allocSub(t.agentID, t.resources)
		} else if after && !before {
			m.allocAdd(t.agentID, t.resources)
		}
		cp := st
		t.status = &cp
		t.unreachableTime = nil
		if isTerminal(s) && len(st.UUID) == 0 {
			delete(fw.tasks, st.TaskID.Value)
		}
	}
	fw.send(updateEvent(st))
}

func (m *Master) exitedExecutor(from *link, e *msgExitedExecutor) {
	a := m.agentByLink[from]
	if a == nil {
		return
	}
	fw := m.frameworks[e.FrameworkID.Value]
	if fw == nil {
		return
	}
	if ex := fw.executors[a.id][e.ExecutorID.Value]; ex != nil {
		m.allocSub(a.id, ex.resources)
	}
	delete(fw.executors[a.id], e.ExecutorID.Value)
	status := e.Status
	eid := e.ExecutorID
	fw.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{
		AgentID: &mesos.AgentID{Value: a.id}, ExecutorID: &eid, Status: &status}})
}

func (m *Master) executorMessage(from *link, e *msgExecutorToFramework) {
	a := m.agentByLink[from]
	if a == nil {
		return
	}
	fw := m.frameworks[e.FrameworkID.Value]
	if fw == nil {
		return
	}
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	fw.send(&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{
		AgentID: mesos.AgentID{Value: a.id}, ExecutorID: e.ExecutorID, Data: data}})
}

// acknowledge forwards a scheduler's ACKNOWLEDGE; acknowledging a terminal
// update ends the master's tracking of the task. Caller holds m.mu.
func (m *Master) acknowledge(fw *mframework, ack *scheduler.Call_Acknowledge) {
	if t := fw.tasks[ack.TaskID.Value]; t != nil && t.status != nil && isTerminal(t.state()) &&
		bytes.Equal(t.status.UUID, ack.UUID) {
		delete(fw.tasks, ack.TaskID.Value)
	}
	if a := m.agents[ack.AgentID.Value]; a != nil {
		a.link.sendToAgent(msgAcknowledge{FrameworkID: mesos.FrameworkID{Value: fw.id}, TaskID: ack.TaskID, UUID: ack.UUID})
	}
}
