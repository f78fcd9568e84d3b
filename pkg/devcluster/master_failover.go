package devcluster

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// ---------------------------------------------------------------------------
// Recovery after a master restart or failover.
//
// A new leading master learns from the registry which agents were admitted,
// unreachable or gone; it knows no frameworks, tasks or offers. Then:
//
//   - While "recovering" (Timeouts.MasterRecovery, ended early once every
//     admitted agent re-registered) every scheduler call gets 503 "Master has
//     not finished recovery", which mesos-go retries.
//   - For Timeouts.AgentReregistration (--agent_reregister_timeout) it waits
//     for the admitted agents to re-register with their tasks. Meanwhile an
//     explicit RECONCILE of a task it does not know gets no answer when the
//     task's agent has not re-registered yet, or when no agent_id is given
//     and any agent is still missing (Master::reconcile). Implicit
//     reconciliation answers for the tasks known so far.
//   - When the window ends, the agents still missing are marked unreachable
//     in the registry, without status updates (the master knows none of
//     their tasks); reconciliation then answers TASK_UNREACHABLE, and an
//     agent that comes back later re-registers like any unreachable agent.

// recoverFromRegistry initialises the agent sets from the registry and
// starts the recovery timers. Called by NewMaster before anything runs.
func (m *Master) recoverFromRegistry() {
	admitted, unreachable, gone := m.reg.snapshot()
	m.unreachable = unreachable
	m.gone = gone
	m.awaiting = map[string]bool{}
	for _, id := range admitted {
		m.awaiting[id] = true
	}
	if len(m.awaiting) == 0 {
		return
	}
	m.log.Info("recovering: waiting for agents to re-register", "agents", len(m.awaiting),
		"timeout", m.timeouts.AgentReregistration)
	if d := m.timeouts.MasterRecovery; d > 0 {
		m.recovering = true
		m.recoveryTimer = time.AfterFunc(d, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if !m.closed {
				m.endRecovering()
			}
		})
	}
	m.reregTimer = time.AfterFunc(m.timeouts.AgentReregistration, m.reregistrationTimeout)
}

// endRecovering ends the 503 phase. Caller holds m.mu.
func (m *Master) endRecovering() {
	if m.recovering {
		m.log.Info("recovered: accepting scheduler calls")
	}
	m.recovering = false
	if m.recoveryTimer != nil {
		m.recoveryTimer.Stop()
		m.recoveryTimer = nil
	}
}

// agentReregistered notes that an agent of the registry is back. Caller
// holds m.mu.
func (m *Master) agentReregistered(id string) {
	if !m.awaiting[id] {
		return
	}
	delete(m.awaiting, id)
	if len(m.awaiting) == 0 {
		m.log.Info("every agent of the registry re-registered")
		m.endRecovering()
		if m.reregTimer != nil {
			m.reregTimer.Stop()
			m.reregTimer = nil
		}
	}
}

// reregistrationTimeout marks the agents that did not re-register in time
// unreachable.
func (m *Master) reregistrationTimeout() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.endRecovering()
	m.reregTimer = nil
	ids := slices.Sorted(maps.Keys(m.awaiting))
	now := time.Now()
	for _, id := range ids {
		m.log.Warn("agent did not re-register within the timeout; marking it unreachable", "agent", id,
			"timeout", m.timeouts.AgentReregistration)
		m.unreachable[id] = now
		m.reg.markUnreachable(id, now)
	}
	m.awaiting = map[string]bool{}
}

func (m *Master) stopRecoveryTimers() {
	if m.recoveryTimer != nil {
		m.recoveryTimer.Stop()
	}
	if m.reregTimer != nil {
		m.reregTimer.Stop()
	}
}

// Recovering reports whether the master still answers 503 to scheduler
// calls, and how many agents of the registry have not re-registered yet.
func (m *Master) Recovering() (refusing bool, awaitingAgents int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recovering, len(m.awaiting)
}

// recoveringNow is the 503 check of serveScheduler.
func (m *Master) recoveringNow() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recovering
}

// ---------------------------------------------------------------------------
// Agents marked gone by the operator.

// MarkAgentGone does what Mesos' MARK_AGENT_GONE operator call does: the
// agent's offers are rescinded, its tasks become TASK_GONE_BY_OPERATOR
// (TASK_LOST for frameworks that are not PARTITION_AWARE) with
// REASON_AGENT_REMOVED_BY_OPERATOR, every framework gets FAILURE{agent_id}
// if the agent was registered, and the agent is told to shut down
// (msgShutdownAgent). The registry remembers it, so the agent is refused
// whenever it tries to re-register, also by later masters. Marking an agent
// gone twice is not an error.
func (m *Master) MarkAgentGone(agentID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("master is closed")
	}
	if _, ok := m.gone[agentID]; ok {
		return nil
	}
	a := m.agents[agentID]
	_, unreachable := m.unreachable[agentID]
	if a == nil && !unreachable && !m.awaiting[agentID] {
		return fmt.Errorf("agent %s is unknown to the master", agentID)
	}
	now := time.Now()
	m.log.Warn("agent marked gone", "agent", agentID)
	m.gone[agentID] = now
	m.reg.markGone(agentID, now)
	delete(m.unreachable, agentID)
	m.agentReregistered(agentID) // no longer awaited
	if a != nil {
		for _, o := range m.offers {
			if o.agentID == agentID {
				m.removeOffer(o, true)
			}
		}
		delete(m.agents, agentID)
		delete(m.agentByLink, a.link)
		a.link.sendToAgent(msgShutdownAgent{Message: "Agent has been marked gone"})
	}
	fwIDs := slices.Sorted(maps.Keys(m.frameworks))
	for _, fwID := range fwIDs {
		fw := m.frameworks[fwID]
		tids := make([]string, 0)
		for tid, t := range fw.tasks {
			if t.agentID == agentID {
				tids = append(tids, tid)
			}
		}
		sort.Strings(tids)
		for _, tid := range tids {
			t := fw.tasks[tid]
			delete(fw.tasks, tid)
			if isTerminal(t.state()) {
				continue
			}
			state := mesos.TASK_LOST
			if fw.partitionAware() {
				state = mesos.TASK_GONE_BY_OPERATOR
			}
			st := masterStatus(tid, state, mesos.REASON_AGENT_REMOVED_BY_OPERATOR, "Agent "+agentID+" marked gone", agentID)
			if t.t.ExecutorID != nil {
				eid := *t.t.ExecutorID
				st.ExecutorID = &eid
			}
			fw.send(updateEvent(st))
		}
		delete(fw.executors, agentID)
	}
	if a != nil {
		for _, fwID := range fwIDs {
			m.frameworks[fwID].send(&scheduler.Event{Type: scheduler.Event_FAILURE,
				Failure: &scheduler.Event_Failure{AgentID: &mesos.AgentID{Value: agentID}}})
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Offer timeout.

// expireOffers rescinds offers held longer than Timeouts.OfferTimeout, as
// --offer_timeout does; the resources go back to the allocator without a
// filter. Caller holds m.mu.
func (m *Master) expireOffers(now time.Time) {
	d := m.timeouts.OfferTimeout
	if d <= 0 {
		return
	}
	var expired []*moffer
	for _, o := range m.offers {
		if now.Sub(o.created) >= d {
			expired = append(expired, o)
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].id < expired[j].id })
	for _, o := range expired {
		m.log.Info("offer timed out", "offer", o.id, "framework", o.fw.id)
		m.removeOffer(o, true)
	}
}

// ---------------------------------------------------------------------------
// Leadership: redirects.

// redirectPaths are the master endpoints a non-leading master redirects to
// the leader (in Mesos every master endpoint that needs the leader's state
// calls Master::Http::redirect); /version and /health are answered by any
// master.
var redirectPaths = map[string]bool{
	schedulerPath: true, schedulerPath + "/": true,
	"/api/v1": true, "/api/v1/": true,
	"/redirect": true, "/master/redirect": true,
	"/state": true, "/master/state": true, "/state.json": true, "/master/state.json": true,
	"/frameworks": true, "/master/frameworks": true,
	"/slaves": true, "/master/slaves": true,
	"/tasks": true, "/master/tasks": true,
}

// leaderRedirect answers like Master::Http::redirect: 307 with a
// protocol-relative Location naming the leader's host and port, followed by
// the request's path, except /redirect and /master/redirect, which go to
// the leader's bare address (transcript 05: "Location: //localhost:5050"),
// and paths below them, which are 404 so redirects cannot loop. leader nil
// means no leader is elected: 503.
func leaderRedirect(w http.ResponseWriter, r *http.Request, leader *mesos.MasterInfo) {
	if leader == nil {
		writeError(w, http.StatusServiceUnavailable, "No leader elected")
		return
	}
	path := r.URL.Path
	base := "//" + leader.GetHostname() + ":" + strconv.FormatUint(uint64(leader.GetPort()), 10)
	switch {
	case path == "/redirect" || path == "/master/redirect":
		path = ""
	case strings.HasPrefix(path, "/redirect/") || strings.HasPrefix(path, "/master/redirect/"):
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Location", base+path)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// ServeStandby serves a master that does not lead: the endpoints of
// redirectPaths answer 307 to the leader (503 without one), /version and
// /health are answered, everything else is 404.
func ServeStandby(w http.ResponseWriter, r *http.Request, leader *mesos.MasterInfo) {
	switch {
	case redirectPaths[r.URL.Path] || strings.HasPrefix(r.URL.Path, "/redirect/") || strings.HasPrefix(r.URL.Path, "/master/redirect/"):
		leaderRedirect(w, r, leader)
	case r.URL.Path == "/version":
		writeJSON(w, map[string]any{"build_date": "", "build_time": 0.0, "build_user": "", "version": defaultVersion})
	case r.URL.Path == "/health" || r.URL.Path == "/master/health":
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// Info is the MasterInfo this master reports (SUBSCRIBED, redirects).
func (m *Master) Info() mesos.MasterInfo { return m.info }
