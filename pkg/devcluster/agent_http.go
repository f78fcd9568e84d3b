package devcluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// ServeHTTP serves the agent's HTTP API: POST /api/v1/executor (the v1
// executor API) and GET /state (agent state as JSON, a subset of Mesos').
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/executor", "/slave(1)/api/v1/executor":
		a.serveExecutor(w, r)
	case "/state", "/state.json", "/slave(1)/state":
		a.serveState(w, r)
	default:
		http.NotFound(w, r)
	}
}

// serveExecutor answers executor calls in Mesos' order (§2.1): 405, 400 (no
// Content-Type), 415, 400 (body), 400 (validation), HEARTBEAT 202, 406
// (SUBSCRIBE Accept), 503 (recovering, non-SUBSCRIBE), 400 unknown
// framework / executor, 403 (not subscribed), then the call.
func (a *Agent) serveExecutor(w http.ResponseWriter, r *http.Request) {
	reqCodec, body, ok := readCall(w, r)
	if !ok {
		return
	}
	var call executor.Call
	if err := reqCodec.decode(body, &call); err != nil {
		writeError(w, http.StatusBadRequest, "Failed to parse body into Call protobuf: "+err.Error())
		return
	}
	if err := validateExecutorCall(&call); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if call.Type == executor.Call_HEARTBEAT {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var respCodec codec
	if call.Type == executor.Call_SUBSCRIBE {
		var ok bool
		if respCodec, ok = responseCodec(r); !ok {
			writeError(w, http.StatusNotAcceptable,
				fmt.Sprintf("Expecting 'Accept' to allow '%s' or '%s'", mediaProtobuf, mediaJSON))
			return
		}
	}

	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "Agent is shutting down")
		return
	}
	if a.recovering && call.Type != executor.Call_SUBSCRIBE {
		a.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "Agent has not finished recovery")
		return
	}
	fw := a.frameworks[call.FrameworkID.Value]
	if fw == nil {
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "Framework cannot be found")
		return
	}
	ex := fw.executors[call.ExecutorID.Value]
	if ex == nil || ex.commandTask {
		a.mu.Unlock()
		writeError(w, http.StatusBadRequest, "Executor cannot be found")
		return
	}
	if ex.state == execRegistering && !ex.recovered && call.Type != executor.Call_SUBSCRIBE {
		a.mu.Unlock()
		writeError(w, http.StatusForbidden, "Executor is not subscribed")
		return
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		conn := a.subscribeLocked(fw, ex, call.Subscribe)
		a.mu.Unlock()
		// When the server shuts down (the agent stops or restarts) the
		// stream ends at once, as the socket of a dying agent would:
		// http.Server.Shutdown does not cancel running handlers and would
		// otherwise wait for this long-lived response until its deadline,
		// while the executor still believes it is connected.
		if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
			srv.RegisterOnShutdown(conn.close)
		}
		s, err := startStream(w, respCodec, nil)
		if err != nil {
			conn.close()
			return
		}
		conn.run(r.Context(), s, a.cfg.Timeouts.ExecutorHeartbeat)
		a.mu.Lock()
		if ex.conn == conn {
			ex.conn = nil
		}
		a.mu.Unlock()
		return
	case executor.Call_UPDATE:
		st := call.Update.Status
		a.statusUpdateLocked(fw, ex, st)
		if ex.conn != nil {
			ex.conn.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED,
				Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}})
		}
	case executor.Call_MESSAGE:
		if a.link != nil && a.info.ID != nil {
			a.link.sendToMaster(msgExecutorToFramework{
				AgentID:     *a.info.ID,
				FrameworkID: mesos.FrameworkID{Value: fw.id()},
				ExecutorID:  ex.info.ExecutorID,
				Data:        call.Message.Data,
			})
		}
	}
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// validateExecutorCall is Mesos' validation::executor::call::validate.
func validateExecutorCall(c *executor.Call) error {
	if c.ExecutorID.Value == "" {
		return fmt.Errorf("Not initialized: executor_id")
	}
	if c.FrameworkID.Value == "" {
		return fmt.Errorf("Not initialized: framework_id")
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return fmt.Errorf("Expecting 'subscribe' to be present")
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return fmt.Errorf("Expecting 'update' to be present")
		}
		st := c.Update.Status
		if st.TaskID.Value == "" || st.State == nil {
			return fmt.Errorf("Not initialized: update.status.task_id, update.status.state")
		}
		if len(st.UUID) == 0 {
			return fmt.Errorf("Expecting 'uuid' to be present")
		}
		if _, err := uuid.FromBytes(st.UUID); err != nil {
			return fmt.Errorf("Invalid UUID: %v", err)
		}
		if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
			return fmt.Errorf("ExecutorID in Call: %s does not match ExecutorID in TaskStatus: %s",
				c.ExecutorID.Value, st.ExecutorID.Value)
		}
		if st.GetSource() != mesos.SOURCE_EXECUTOR {
			return fmt.Errorf("Received Call from executor %s of framework %s with invalid source, expecting 'SOURCE_EXECUTOR'",
				c.ExecutorID.Value, c.FrameworkID.Value)
		}
		if st.GetState() == mesos.TASK_STAGING {
			return fmt.Errorf("Received TASK_STAGING from executor %s of framework %s which is not allowed",
				c.ExecutorID.Value, c.FrameworkID.Value)
		}
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return fmt.Errorf("Expecting 'message' to be present")
		}
	case executor.Call_HEARTBEAT:
	default:
		return fmt.Errorf("Expecting 'type' to be present")
	}
	return nil
}

// subscribeLocked attaches a new stream to ex (closing any previous one)
// and queues SUBSCRIBED, the acknowledgements of re-sent updates and the
// queued tasks. A terminating executor gets SHUTDOWN instead.
func (a *Agent) subscribeLocked(fw *agentFramework, ex *agentExecutor, sub *executor.Call_Subscribe) *execConn {
	conn := newExecConn()
	if ex.state >= execTerminating || fw.terminating {
		conn.send(&executor.Event{Type: executor.Event_SHUTDOWN})
		conn.finishAfterDrain()
		return conn
	}
	if ex.conn != nil {
		ex.conn.close()
	}
	ex.conn = conn
	if ex.regTimer != nil {
		ex.regTimer.Stop()
	}
	wasRecovered := ex.recovered
	ex.recovered = false
	ex.state = execRunning
	a.log.Info("executor subscribed", "framework", fw.id(), "executor", ex.id(), "recovered", wasRecovered)
	conn.send(&executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo:  ex.info,
		FrameworkInfo: fw.info,
		AgentInfo:     a.agentInfoLocked(),
		ContainerID:   &mesos.ContainerID{Value: ex.containerID},
	}})
	unacked := map[string]bool{}
	for _, t := range sub.UnacknowledgedTasks {
		unacked[t.TaskID.Value] = true
		if ex.tasks[t.TaskID.Value] == nil {
			ex.tasks[t.TaskID.Value] = &agentTask{info: t, state: mesos.TASK_STAGING, launched: true}
		}
	}
	for _, u := range sub.UnacknowledgedUpdates {
		st := u.Status
		if len(st.UUID) == 0 || st.GetSource() != mesos.SOURCE_EXECUTOR {
			continue
		}
		if st.ExecutorID == nil {
			st.ExecutorID = &mesos.ExecutorID{Value: ex.id()}
		}
		unacked[st.TaskID.Value] = true
		a.statusUpdateLocked(fw, ex, st)
		conn.send(&executor.Event{Type: executor.Event_ACKNOWLEDGED,
			Acknowledged: &executor.Event_Acknowledged{TaskID: st.TaskID, UUID: st.UUID}})
	}
	if wasRecovered {
		// Tasks sent to the executor before the restart that it does not
		// know about never reached it.
		for _, id := range sortedTaskIDs(ex) {
			t := ex.tasks[id]
			if t.launched && t.state == mesos.TASK_STAGING && !unacked[id] {
				state := mesos.TASK_LOST
				if fw.hasCapability(mesos.FrameworkInfo_Capability_PARTITION_AWARE) {
					state = mesos.TASK_DROPPED
				}
				a.statusUpdateLocked(fw, ex, agentStatus(id, state, mesos.REASON_AGENT_RESTARTED,
					"Task launched during agent restart"))
			}
		}
	}
	a.deliverQueuedLocked(ex)
	if fw.checkpoint() {
		a.saveCheckpointLocked()
	}
	a.maybeFinishRecoveryLocked()
	return conn
}

// execConn is one executor SUBSCRIBE stream. Events are queued without
// blocking (under the agent's lock) and written, in order, by the goroutine
// serving the request.
type execConn struct {
	mu     sync.Mutex
	queue  []*executor.Event
	finish bool
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newExecConn() *execConn {
	return &execConn{wake: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (c *execConn) send(ev *executor.Event) {
	c.mu.Lock()
	c.queue = append(c.queue, ev)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// finishAfterDrain closes the stream once the queued events are written.
func (c *execConn) finishAfterDrain() {
	c.mu.Lock()
	c.finish = true
	c.mu.Unlock()
}

func (c *execConn) close() { c.once.Do(func() { close(c.closed) }) }

func (c *execConn) run(ctx context.Context, s *stream, heartbeat time.Duration) {
	defer s.close()
	defer c.close()
	var tick <-chan time.Time
	if heartbeat > 0 {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		c.mu.Lock()
		q, finish := c.queue, c.finish
		c.queue = nil
		c.mu.Unlock()
		for _, ev := range q {
			select {
			case <-c.closed:
				return
			default:
			}
			if err := s.send(ev); err != nil {
				return
			}
		}
		if finish {
			return
		}
		select {
		case <-c.wake:
		case <-c.closed:
			return
		case <-s.done():
			return
		case <-ctx.Done():
			return
		case <-tick:
			c.send(&executor.Event{Type: executor.Event_HEARTBEAT})
		}
	}
}

// ---- /state -------------------------------------------------------------

func (a *Agent) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "Expecting 'GET', received '"+r.Method+"'")
		return
	}
	a.mu.Lock()
	state := a.stateLocked()
	a.mu.Unlock()
	data, err := json.Marshal(state)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// resourcesSummary renders resources like Mesos' /state: scalars as
// numbers, ranges as "[a-b, c-d]" strings.
// resourcesSummary is the flat name → value map Mesos' state endpoints
// show as "resources": scalars summed and ranges merged across
// reservations, as in "ports": "[31000-32000]".
func resourcesSummary(rs []mesos.Resource) map[string]any {
	out := map[string]any{}
	ranges := map[string][]mesos.Value_Range{}
	for _, r := range rs {
		switch r.GetType() {
		case mesos.SCALAR:
			prev, _ := out[r.Name].(float64)
			out[r.Name] = prev + r.GetScalar().GetValue()
		case mesos.RANGES:
			ranges[r.Name] = append(ranges[r.Name], r.GetRanges().GetRange()...)
		case mesos.SET:
			out[r.Name] = "{" + strings.Join(r.GetSet().GetItem(), ", ") + "}"
		}
	}
	for name, rgs := range ranges {
		var parts []string
		for _, rg := range mergeRanges(rgs) {
			parts = append(parts, fmt.Sprintf("%d-%d", rg.Begin, rg.End))
		}
		out[name] = "[" + strings.Join(parts, ", ") + "]"
	}
	return out
}

// mergeRanges sorts ranges and joins those that touch or overlap.
func mergeRanges(rgs []mesos.Value_Range) []mesos.Value_Range {
	sorted := slices.Clone(rgs)
	slices.SortFunc(sorted, func(a, b mesos.Value_Range) int { return cmp.Compare(a.Begin, b.Begin) })
	var out []mesos.Value_Range
	for _, rg := range sorted {
		if n := len(out); n > 0 && rg.Begin <= out[n-1].End+1 {
			out[n-1].End = max(out[n-1].End, rg.End)
			continue
		}
		out = append(out, rg)
	}
	return out
}

func (a *Agent) stateLocked() map[string]any {
	attrs := map[string]any{}
	for _, at := range a.info.Attributes {
		switch at.Type {
		case mesos.SCALAR:
			attrs[at.Name] = at.GetScalar().GetValue()
		case mesos.TEXT:
			attrs[at.Name] = at.GetText().GetValue()
		default:
			attrs[at.Name] = at.String()
		}
	}
	taskJSON := func(fw *agentFramework, ex *agentExecutor, t *agentTask) map[string]any {
		var statuses []any
		for _, s := range t.statuses {
			st := map[string]any{"state": s.GetState().String(), "timestamp": s.GetTimestamp()}
			if s.ContainerStatus != nil {
				st["container_status"] = s.ContainerStatus
			}
			statuses = append(statuses, st)
		}
		execID := ""
		if !ex.commandTask {
			execID = ex.id()
		}
		return map[string]any{
			"id": t.info.TaskID.Value, "name": t.info.Name, "framework_id": fw.id(),
			"executor_id": execID, "slave_id": a.info.GetID().GetValue(), "state": t.state.String(),
			"resources": resourcesSummary(t.info.Resources), "statuses": statuses,
		}
	}
	execJSON := func(fw *agentFramework, ex *agentExecutor) map[string]any {
		tasks, queued, completed := []any{}, []any{}, []any{}
		for _, id := range sortedTaskIDs(ex) {
			t := ex.tasks[id]
			switch {
			case !t.launched && !isTerminalState(t.state):
				queued = append(queued, taskJSON(fw, ex, t))
			case isTerminalState(t.state):
				completed = append(completed, taskJSON(fw, ex, t))
			default:
				tasks = append(tasks, taskJSON(fw, ex, t))
			}
		}
		for _, t := range ex.completed {
			completed = append(completed, taskJSON(fw, ex, t))
		}
		m := map[string]any{
			"id": ex.id(), "name": ex.info.GetName(), "source": ex.info.GetSource(),
			"container": ex.containerID, "directory": ex.directory,
			"resources": resourcesSummary(ex.info.Resources), "state": ex.state.String(),
			"tasks": tasks, "queued_tasks": queued, "completed_tasks": completed,
		}
		if ex.proc != nil {
			m["pid"] = ex.proc.pid
		}
		return m
	}
	fwJSON := func(fw *agentFramework) map[string]any {
		execs, done := []any{}, []any{}
		for _, ex := range fw.executors {
			if ex.state == execTerminated {
				done = append(done, execJSON(fw, ex))
			} else {
				execs = append(execs, execJSON(fw, ex))
			}
		}
		for _, ex := range fw.completedExecutors {
			done = append(done, execJSON(fw, ex))
		}
		return map[string]any{
			"id": fw.id(), "name": fw.info.Name, "user": fw.info.User,
			"failover_timeout": fw.info.GetFailoverTimeout(), "checkpoint": fw.checkpoint(),
			"hostname": fw.info.GetHostname(), "principal": fw.info.GetPrincipal(), "roles": fw.info.Roles,
			"executors": execs, "completed_executors": done,
		}
	}
	fws, done := []any{}, []any{}
	for _, fw := range a.frameworks {
		fws = append(fws, fwJSON(fw))
	}
	for _, fw := range a.completedFws {
		done = append(done, fwJSON(fw))
	}
	return map[string]any{
		"version":                mesosVersionForAgent,
		"start_time":             float64(a.started.UnixNano()) / 1e9,
		"id":                     a.info.GetID().GetValue(),
		"pid":                    "slave(1)@" + a.endpoint(),
		"hostname":               a.info.Hostname,
		"capabilities":           []string{"MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"},
		"resources":              resourcesSummary(a.info.Resources),
		"checkpointed_resources": a.checkpointed,
		"attributes":             attrs,
		"flags": map[string]string{
			"work_dir":                        a.cfg.WorkDir,
			"resources":                       a.cfg.Resources,
			"attributes":                      a.cfg.Attributes,
			"executor_registration_timeout":   stoutDuration(a.cfg.Timeouts.ExecutorRegistration),
			"executor_reregistration_timeout": stoutDuration(a.cfg.Timeouts.ExecutorReregistration),
			"executor_shutdown_grace_period":  stoutDuration(a.cfg.Timeouts.ExecutorShutdownGrace),
			"recover":                         "reconnect",
		},
		"registered":           a.registered,
		"recovering":           a.recovering,
		"frameworks":           fws,
		"completed_frameworks": done,
	}
}

const mesosVersionForAgent = "1.10.0"
