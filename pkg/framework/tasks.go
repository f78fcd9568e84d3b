package framework

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Task is the latest state Mesos reported for one of the framework's tasks.
type Task struct {
	ID      string
	AgentID string
	State   mesos.TaskState
	Reason  string
	Message string
	Healthy *bool
	// Updated is when the scheduler last heard of the task.
	Updated time.Time
}

// Terminal reports whether the task can never run again. TASK_UNREACHABLE
// is not terminal: the agent may come back with it.
func (t Task) Terminal() bool { return IsTerminal(t.State) }

// IsTerminal reports whether a task in state s is over.
func IsTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING, mesos.TASK_UNREACHABLE:
		return false
	}
	return true
}

// TaskRef names a task for explicit reconciliation.
type TaskRef struct{ ID, AgentID string }

// OfferHandler decides what to do with offers; Mysos' launcher implements
// it. The framework accepts the offers it returns operations for and
// declines the rest.
type OfferHandler interface {
	// HandleOffers returns the operations to apply per offer id, and whether
	// more offers are wanted (something is still pending). Offers without
	// operations are declined, for a few seconds if more are wanted, for a
	// minute and with SUPPRESS otherwise.
	HandleOffers(ctx context.Context, offers []mesos.Offer) (accept map[string][]mesos.Offer_Operation, wantMore bool)
	// KnownTasks lists every task the framework launched and may still
	// exist, for explicit reconciliation after each subscription.
	KnownTasks(ctx context.Context) ([]TaskRef, error)
}

// ErrNotSubscribed is returned by calls made while no subscription is live.
var ErrNotSubscribed = errors.New("not subscribed to a Mesos master")

// Task returns what is known of a task; false before Mesos said anything.
func (f *Framework) Task(id string) (Task, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	return t, ok
}

// TasksWithPrefix returns the known tasks whose id starts with prefix,
// by id.
func (f *Framework) TasksWithPrefix(prefix string) []Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Only the matches are sorted: sorting every task's id made each
	// cluster's pass cost O(tasks log tasks).
	var out []Task
	for id, t := range f.tasks {
		if strings.HasPrefix(id, prefix) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// noteStatus records a status update: the latest word wins, as the
// master's stream orders a task's updates. It also returns what was known
// before, if anything: a task reported ended may turn out alive, when a
// terminal answer raced its launch (a reconciliation or KILL that reached
// the master before the ACCEPT), and its own updates then follow.
func (f *Framework) noteStatus(st mesos.TaskStatus) (t Task, before Task, known bool) {
	t = Task{
		ID: st.TaskID.Value, AgentID: st.GetAgentID().GetValue(), State: st.GetState(),
		Message: st.GetMessage(), Healthy: st.Healthy, Updated: time.Now(),
	}
	if st.Reason != nil {
		t.Reason = st.GetReason().String()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tasks == nil {
		f.tasks = map[string]Task{}
	}
	before, known = f.tasks[t.ID]
	if t.AgentID == "" {
		t.AgentID = before.AgentID
	}
	f.tasks[t.ID] = t
	return t, before, known
}

// noteLaunched records tasks just sent in an ACCEPT as TASK_STAGING, as
// Mesos itself does, so that nobody mistakes them for unknown.
func (f *Framework) noteLaunched(ops []mesos.Offer_Operation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tasks == nil {
		f.tasks = map[string]Task{}
	}
	for _, op := range ops {
		if op.Type != mesos.Offer_Operation_LAUNCH || op.Launch == nil {
			continue
		}
		f.cfg.Metrics.Launched(len(op.Launch.TaskInfos))
		for _, ti := range op.Launch.TaskInfos {
			f.tasks[ti.TaskID.Value] = Task{ID: ti.TaskID.Value, AgentID: ti.AgentID.Value,
				State: mesos.TASK_STAGING, Message: "launch sent to the master", Updated: time.Now()}
		}
	}
}

// ForgetTask drops a terminal task from the table once nothing refers to it.
func (f *Framework) ForgetTask(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tasks, id)
}

// currentCaller is the live subscription's caller.
func (f *Framework) currentCaller() (callerCtx, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.subscribed || f.caller == nil {
		return callerCtx{}, ErrNotSubscribed
	}
	return callerCtx{caller: f.caller, timeout: f.cfg.CallTimeout}, nil
}

// Kill asks Mesos to kill a task; the answer arrives as a status update.
func (f *Framework) Kill(ctx context.Context, taskID, agentID string) error {
	c, err := f.currentCaller()
	if err != nil {
		return err
	}
	f.cfg.Metrics.Killed()
	return c.call(ctx, calls.Kill(taskID, agentID))
}

// Revive asks for offers again, clearing every decline filter: something
// became pending.
func (f *Framework) Revive(ctx context.Context) error {
	c, err := f.currentCaller()
	if err != nil {
		return err
	}
	f.reviveMu.Lock()
	defer f.reviveMu.Unlock()
	f.noteRevive()
	return c.call(ctx, calls.Revive())
}

// ReconcileTasks asks Mesos for the state of the given tasks (explicit
// reconciliation); answers arrive as status updates.
func (f *Framework) ReconcileTasks(ctx context.Context, tasks []TaskRef) error {
	if len(tasks) == 0 {
		return nil
	}
	c, err := f.currentCaller()
	if err != nil {
		return err
	}
	m := make(map[string]string, len(tasks))
	for _, t := range tasks {
		m[t.ID] = t.AgentID
	}
	return c.call(ctx, calls.Reconcile(calls.ReconcileTasks(m)))
}

// callerCtx bounds each call by the call timeout.
type callerCtx struct {
	caller  calls.Caller
	timeout time.Duration
}

func (c callerCtx) call(ctx context.Context, call *scheduler.Call) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return calls.CallNoData(ctx, c.caller, call)
}

// noteRevive records a REVIVE about to be sent. Caller holds reviveMu.
func (f *Framework) noteRevive() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suppressed = false
	f.reviveCount++
}

func (f *Framework) revives() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reviveCount
}
