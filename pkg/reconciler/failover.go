package reconciler

import (
	"fmt"
	"slices"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// Failover and switchover (docs/failover.md). Both are an operation kept in
// status.operation and moved one step per pass, so a scheduler that dies
// midway resumes from the step it recorded; every step is idempotent.
//
//	failover:   Fencing → Electing → CatchingUp → Configuring → done
//	switchover: Requested → Demoting → CatchingUp → Configuring → done
//
// While an operation is before Configuring, no topology step runs: the
// recorded primary is being replaced.

// The operation actions.
const (
	actBeginFailover     actionKind = "BeginFailover"
	actFence             actionKind = "Fence"
	actChoose            actionKind = "ChooseCandidate"
	actStartSwitchover   actionKind = "StartSwitchover"
	actDemote            actionKind = "DemotePrimary"
	actCatchUp           actionKind = "CatchUp"
	actFinish            actionKind = "FinishOperation"
	actBlock             actionKind = "OperationBlocked"
	actAbort             actionKind = "AbortOperation"
	actMarkErrant        actionKind = "MarkErrant"
	actStopIO            actionKind = "StopReplicaIO"     // a surplus replica stops acknowledging before it goes
	actRequestSwitchover actionKind = "RequestSwitchover" // the primary is beyond spec.replicas
)

// Timing of operations.
const (
	// demoteBudget is how long a switchover lets running transactions
	// finish before the primary turns read-only; then their connections
	// are killed.
	demoteBudget = 2 * time.Second
	// catchUpTimeout bounds one wait for the candidate to apply what it
	// received; the step is retried after it.
	catchUpTimeout = 15 * time.Second
	// operationRecheck: while an operation waits, the cluster is looked at
	// again this often even if nothing wakes it.
	operationRecheck = 500 * time.Millisecond
)

// operationActions are the steps of the operation in progress, or the start
// of a failover when the primary failed.
func operationActions(w world) []action {
	if w.servers == nil || w.cluster.Metadata.DeletionTimestamp != nil {
		return nil
	}
	op := w.cluster.Status.Operation
	if op == nil {
		if a, ok := beginFailover(w); ok {
			return []action{a}
		}
		if a, ok := moveSurplusPrimary(w); ok {
			return []action{a}
		}
		return nil
	}
	if a, ok := operationStep(w, op); ok {
		return []action{a}
	}
	return nil
}

// operationStep is the one thing the operation needs now, if anything.
func operationStep(w world, op *spec.Operation) (action, bool) {
	from := instanceByName(w, op.From)
	if op.Kind == spec.OperationSwitchover && before(op.Step, spec.StepConfiguring) && from != nil {
		if why, failed := primaryFailure(w, from); failed {
			if held := failoverHeld(w); held != "" {
				return refuse(op, from, fmt.Sprintf("the primary %s failed (%s) and is not failed over: %s", from.Name(), why, held)), true
			}
			return convertToFailover(w, op, why), true
		}
	}
	if op.Kind == spec.OperationFailover && before(op.Step, spec.StepConfiguring) {
		if a, ok := abortIfPrimaryBack(w, op, from); ok {
			return a, true
		}
		if op.Step == spec.StepFencing || fenceWork(w, from).any() {
			return withOp(actFence, from, op, "cut the failed primary off before choosing its successor"), true
		}
	}
	switch op.Step {
	case spec.StepRequested:
		return startSwitchover(w, op, from)
	case spec.StepDemoting:
		return withOp(actDemote, from, op, "the primary stops taking writes and its clients are disconnected"), true
	case spec.StepElecting:
		return chooseCandidate(w, op)
	case spec.StepCatchingUp:
		return catchUp(w, op, from)
	case spec.StepConfiguring:
		if p := primaryInstance(w); p != nil && p.Name() == op.To {
			if why, failed := primaryFailure(w, p); failed && failoverHeld(w) == "" {
				// The new primary died before it took writes: fail over again.
				next := &spec.Operation{ID: operationID(w, "failover"), Kind: spec.OperationFailover, From: p.Name(), Step: spec.StepFencing,
					Reason: fmt.Sprintf("the new primary %s failed during %s %s: %s", p.Name(), strings.ToLower(op.Kind), op.ID, why), StartedAt: w.now}
				return action{kind: actBeginFailover, inst: p, op: next, why: next.Reason}, true
			}
		}
		return finishIfWritable(w, op)
	}
	return action{}, false
}

// withOp is an action on the operation, with the operation as it must be
// written afterwards.
func withOp(kind actionKind, inst *store.Instance, op *spec.Operation, why string) action {
	next := *op
	return action{kind: kind, inst: inst, op: &next, why: why}
}

var stepOrder = []string{spec.StepRequested, spec.StepFencing, spec.StepDemoting, spec.StepElecting, spec.StepCatchingUp, spec.StepConfiguring}

// before reports whether step a comes before step b.
func before(a, b string) bool { return slices.Index(stepOrder, a) < slices.Index(stepOrder, b) }

// beginFailover starts a failover when the primary failed, automatic
// failover is on and the anti-flapping window allows it.
func beginFailover(w world) (action, bool) {
	p := primaryInstance(w)
	if p == nil || specReplicas(w.cluster) < 2 {
		return action{}, false
	}
	why, failed := primaryFailure(w, p)
	if !failed || failoverHeld(w) != "" {
		return action{}, false
	}
	op := &spec.Operation{ID: operationID(w, "failover"), Kind: spec.OperationFailover, From: p.Name(),
		Step: spec.StepFencing, Reason: "the primary " + p.Name() + " failed: " + why, StartedAt: w.now}
	return action{kind: actBeginFailover, inst: p, op: op, why: op.Reason}, true
}

// failoverHeld says why a failed primary is not failed over
// automatically, or "".
func failoverHeld(w world) string {
	f := w.cluster.Spec.Failover
	if f.Automatic != nil && !*f.Automatic {
		return "automatic failover is off (spec.failover.automatic: false); run mysosctl switchover when a replica is healthy, or turn it on"
	}
	last := w.cluster.Status.LastFailover
	window := f.BlockWindow.OrDefault(spec.DefaultBlockWindow)
	if last != nil && !last.Acknowledged && w.now.Sub(last.At) < window {
		return fmt.Sprintf("the last failover (%s, %s → %s) was %s ago, within spec.failover.blockWindow %s; acknowledge it with mysosctl failover ack %s",
			last.ID, last.From, last.To, w.now.Sub(last.At).Truncate(time.Second), window, w.cluster.Metadata.Name)
	}
	return ""
}

// operationID names a new operation by kind and time, to the millisecond,
// or to the nanosecond when that would repeat the id of the operation it
// follows (events are grouped by id).
func operationID(w world, kind string) string {
	id := kind + "-" + strings.ReplaceAll(w.now.UTC().Format("20060102T150405.000Z"), ".", "")
	st := w.cluster.Status
	if (st.Operation != nil && st.Operation.ID == id) || (st.LastFailover != nil && st.LastFailover.ID == id) {
		id = kind + "-" + strings.ReplaceAll(w.now.UTC().Format("20060102T150405.000000000Z"), ".", "")
	}
	return id
}

func specReplicas(c *spec.MySQLCluster) int {
	if c.Spec.Replicas == nil {
		return 0
	}
	return int(*c.Spec.Replicas)
}

// primaryFailure says whether the primary failed and why. A task Mesos
// reports dead or unreachable counts at once; a task that runs while its
// mysqld does not answer counts after spec.failover.unreachableTimeout,
// and only if every replica that answers has lost it too, so a slow
// network between the scheduler and the primary alone fails nothing over.
func primaryFailure(w world, p *store.Instance) (string, bool) {
	if p.Phase == store.InstancePending {
		return "its task ended and it waits for a relaunch", true
	}
	t, known := w.task(p.TaskID)
	switch {
	case !known || p.Phase != store.InstanceLaunched:
		return "", false // after a restart Mesos is asked first
	case t.Terminal() || t.State == mesos.TASK_UNREACHABLE:
		return fmt.Sprintf("its task is %s (%s)", t.State, firstLine(strings.TrimSpace(t.Reason+" "+t.Message))), true
	case t.State != mesos.TASK_RUNNING:
		return "", false // starting again in place
	}
	if v, ok := w.servers[p.Ordinal]; ok && v.err == nil {
		// Back read-only on a fresh volume (moved, or its agent gone), it
		// must never be made writable over replicas that have more. (A
		// writable primary is not compared: a replica observed a moment
		// after it may hold its newest commit.)
		if lacks := lacksReceived(w, p); v.status.ReadOnly && lacks != "" {
			return "it answers without transactions a replica has (" + lacks + ")", true
		}
		return "", false
	}
	since, down := w.sqlDownSince(p.TaskID)
	timeout := w.cluster.Spec.Failover.UnreachableTimeout.OrDefault(spec.DefaultUnreachableTimeout)
	if !down || w.now.Sub(since) < timeout {
		return "", false
	}
	confirmed := 0
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == p || !ok || v.err != nil || !replicatesFrom(v.status, p) {
			continue
		}
		if v.status.Replica.IORunning {
			return "", false // a replica still receives from it
		}
		confirmed++
	}
	if confirmed == 0 {
		return "", false
	}
	return fmt.Sprintf("its mysqld has not answered for %s and none of the %d replicas that answer receives from it",
		w.now.Sub(since).Truncate(time.Millisecond), confirmed), true
}

// fence is what still keeps the old primary able to commit: replicas whose
// IO thread could acknowledge its transactions, its task, its writability.
type fence struct {
	stopIO   []*store.Instance
	kill     bool
	readOnly bool
}

func (f fence) any() bool { return len(f.stopIO) > 0 || f.kill || f.readOnly }

func (f fence) String() string {
	var parts []string
	for _, inst := range f.stopIO {
		parts = append(parts, "stop the IO thread of "+inst.Name())
	}
	if f.kill {
		parts = append(parts, "kill the old primary's task")
	}
	if f.readOnly {
		parts = append(parts, "make the old primary read-only")
	}
	return strings.Join(parts, ", ")
}

// fenceWork: with semi-sync waiting for replicas forever, a primary whose
// replicas stopped fetching can acknowledge nothing more. Its task is
// killed too, unless it is a fresh one that came back read-only (mysqld
// always boots read-only).
func fenceWork(w world, from *store.Instance) fence {
	var f fence
	if from == nil {
		return f
	}
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == from || !ok || v.err != nil || !replicatesFrom(v.status, from) {
			continue
		}
		if v.status.Replica.IOThread != "No" {
			f.stopIO = append(f.stopIO, inst)
		}
	}
	v, answers := w.servers[from.Ordinal]
	answers = answers && v.err == nil
	f.readOnly = answers && !v.status.ReadOnly
	if t, ok := w.task(from.TaskID); ok && from.Phase == store.InstanceLaunched && from.TaskID != "" &&
		(t.State == mesos.TASK_RUNNING || t.State == mesos.TASK_UNREACHABLE) && (!answers || !v.status.ReadOnly) {
		f.kill = !w.recentlyKilled(from.TaskID)
	}
	return f
}

// abortIfPrimaryBack ends a failover that cannot proceed when the old
// primary answers again: no replica was promoted, so it still has every
// acknowledged transaction, and it resumes as the primary.
func abortIfPrimaryBack(w world, op *spec.Operation, from *store.Instance) (action, bool) {
	if op.Blocked == "" || from == nil {
		return action{}, false
	}
	if v, ok := w.servers[from.Ordinal]; !ok || v.err != nil || lacksReceived(w, from) != "" {
		return action{}, false
	}
	a := withOp(actAbort, from, op, fmt.Sprintf("%s answers again before any replica could be promoted (%s); it stays the primary", from.Name(), op.Blocked))
	a.op = nil
	return a, true
}

// lacksReceivedOf names an answering replica (other than inst and the old
// primary of the operation) that received transactions set lacks.
func lacksReceivedOf(w world, inst *store.Instance, set mysql.GTIDSet) string {
	from := instanceByName(w, w.cluster.Status.Operation.From)
	for _, other := range w.instances {
		ov, ok := w.servers[other.Ordinal]
		if other == inst || other == from || !ok || ov.err != nil || other.Errant != "" {
			continue
		}
		if got := received(ov); !set.Contains(got) {
			return fmt.Sprintf("%s has %s", other.Name(), got)
		}
	}
	return ""
}

// lacksReceived names an answering replica that received transactions the
// instance has not executed (and what it has), or is "".
func lacksReceived(w world, inst *store.Instance) string {
	v := w.servers[inst.Ordinal]
	for _, other := range w.instances {
		ov, ok := w.servers[other.Ordinal]
		if other == inst || !ok || ov.err != nil || other.Errant != "" {
			continue
		}
		if got := received(ov); !v.status.GTIDExecuted.Contains(got) {
			return fmt.Sprintf("%s has %s, %s only %s", other.Name(), got, inst.Name(), orEmpty(v.status.GTIDExecuted.String()))
		}
	}
	return ""
}

// convertToFailover: a primary that fails during a switchover is failed over.
func convertToFailover(w world, op *spec.Operation, why string) action {
	next := &spec.Operation{ID: operationID(w, "failover"), Kind: spec.OperationFailover, From: op.From,
		Step: spec.StepFencing, Reason: fmt.Sprintf("the primary %s failed during switchover %s: %s", op.From, op.ID, why), StartedAt: w.now}
	return action{kind: actBeginFailover, inst: instanceByName(w, op.From), op: next, why: next.Reason}
}

// candidates are the instances that may become the primary: running,
// answering, not errant, not the old primary.
func candidates(w world, from *store.Instance) []*store.Instance {
	var out []*store.Instance
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == from || !ok || v.err != nil || inst.Errant != "" || inst.Phase != store.InstanceLaunched {
			continue
		}
		out = append(out, inst)
	}
	return out
}

// received is everything a replica has: applied, or fetched and waiting in
// its relay log.
func received(v serverView) mysql.GTIDSet {
	if v.status.Replica == nil {
		return v.status.GTIDExecuted
	}
	return v.status.GTIDExecuted.Union(v.status.Replica.RetrievedGTID)
}

// chooseCandidate picks the replica whose received set contains every other
// answering replica's. It refuses to guess: when too few replicas answer
// for one of them to be sure to hold every acknowledged transaction, or
// when two of them diverged, the operation is blocked until that changes.
func chooseCandidate(w world, op *spec.Operation) (action, bool) {
	from := instanceByName(w, op.From)
	cands := candidates(w, from)
	members := 0
	for _, inst := range w.instances {
		if inst != from && mayHoldAcknowledged(inst) {
			members++
		}
	}
	// An acknowledged transaction is on at least waitCount of the members;
	// looking at members-waitCount+1 of them finds it on one. The count a
	// MySQL 8 primary applied may be older than the spec (it is set when
	// semi-sync is turned on), so the least any primary waits for, one,
	// is assumed: every member must answer (MariaDB always waits for one).
	const waitCount = 1
	need := members - waitCount + 1
	if len(cands) < need {
		return block(op, from, fmt.Sprintf("only %d of the %d replicas answer and are not errant; an acknowledged transaction may be only on one that does not, so %d must answer",
			len(cands), members, need))
	}
	best, blocked := mostComplete(w, cands)
	if best == nil {
		return block(op, from, blocked)
	}
	a := withOp(actChoose, best, op, fmt.Sprintf("%s has every transaction any answering replica received (%s)", best.Name(), orEmpty(received(w.servers[best.Ordinal]).String())))
	a.op.To, a.op.Step, a.op.Blocked = best.Name(), spec.StepCatchingUp, ""
	return a, true
}

// mayHoldAcknowledged: a replica that may hold a write acknowledged to a
// client: it has (or had) a task and a volume, is not errant, and was not
// released (a released replica was drained first: a staying one has all it
// received).
func mayHoldAcknowledged(inst *store.Instance) bool {
	return inst.Errant == "" && inst.Phase != store.InstanceReleasing && inst.AgentID != "" && inst.Launches > 0
}

// mostComplete is the instance whose received set contains every other's,
// the lowest ordinal among equals; nil and why when two sets diverged.
func mostComplete(w world, insts []*store.Instance) (*store.Instance, string) {
	var best *store.Instance
	var bestSet mysql.GTIDSet
	for _, inst := range insts {
		set := received(w.servers[inst.Ordinal])
		switch {
		case best == nil:
			best, bestSet = inst, set
		case !mysql.Comparable(bestSet, set):
			return nil, fmt.Sprintf("%s (%s) and %s (%s) diverged: neither has every transaction of the other; refusing to guess which to lose",
				best.Name(), bestSet, inst.Name(), set)
		case !bestSet.Contains(set):
			best, bestSet = inst, set
		}
	}
	if best == nil {
		return nil, "no replica answers"
	}
	return best, ""
}

// block records why the operation waits, once per reason.
func block(op *spec.Operation, inst *store.Instance, why string) (action, bool) {
	if op.Blocked == why {
		return action{}, false
	}
	a := withOp(actBlock, inst, op, why)
	a.op.Blocked = why
	return a, true
}

// moveSurplusPrimary starts a switchover when a scale-down leaves the
// primary beyond spec.replicas (scale-down never releases the primary), once
// the cluster is otherwise whole: a writable primary and every wanted
// replica replicating from it.
func moveSurplusPrimary(w world) (action, bool) {
	p := primaryInstance(w)
	if p == nil || p.Ordinal < specReplicas(w.cluster) || specReplicas(w.cluster) < 1 || len(notReplicating(w)) > 0 || len(healthyTargets(w, p)) == 0 {
		return action{}, false
	}
	op := &spec.Operation{ID: operationID(w, "switchover"), Kind: spec.OperationSwitchover, From: p.Name(), Step: spec.StepRequested,
		Reason: fmt.Sprintf("spec.replicas is %d: the primary %s must move before it is released", specReplicas(w.cluster), p.Name()), StartedAt: w.now}
	return action{kind: actRequestSwitchover, inst: p, op: op, why: op.Reason}, true
}

// startSwitchover checks the target (or picks the most up-to-date healthy
// replica) and moves on to demoting the primary.
func startSwitchover(w world, op *spec.Operation, from *store.Instance) (action, bool) {
	if from == nil || from.Name() != w.cluster.Status.CurrentPrimary {
		return refuse(op, from, fmt.Sprintf("%s is no longer the primary", op.From)), true
	}
	healthy := healthyTargets(w, from)
	if op.To != "" {
		target := instanceByName(w, op.To)
		if target == nil || !slices.Contains(healthy, target) {
			return refuse(op, from, fmt.Sprintf("%s does not replicate from the primary %s with both threads running", op.To, op.From)), true
		}
		healthy = []*store.Instance{target}
	}
	target, blocked := mostComplete(w, healthy)
	if target == nil {
		return refuse(op, from, "no healthy replica to switch to: "+blocked), true
	}
	a := withOp(actStartSwitchover, target, op, fmt.Sprintf("%s becomes the primary in place of %s", target.Name(), op.From))
	a.op.To, a.op.Step = target.Name(), spec.StepDemoting
	return a, true
}

// healthyTargets are the replicas a switchover may promote: staying,
// answering, not errant, replicating from the primary with both threads.
func healthyTargets(w world, from *store.Instance) []*store.Instance {
	var out []*store.Instance
	for _, inst := range candidates(w, from) {
		st := w.servers[inst.Ordinal].status
		if inst.Ordinal < specReplicas(w.cluster) && replicatesFrom(st, from) && st.Replica.IORunning && st.Replica.SQLRunning {
			out = append(out, inst)
		}
	}
	return out
}

// refuse ends an operation that cannot be carried out, saying why.
func refuse(op *spec.Operation, inst *store.Instance, why string) action {
	a := withOp(actAbort, inst, op, why)
	a.op = nil
	return a
}

// catchUp waits for the candidate to apply everything it has (failover) or
// everything the read-only old primary has (switchover), then detaches it
// from replication and records it as the primary.
func catchUp(w world, op *spec.Operation, from *store.Instance) (action, bool) {
	cand := instanceByName(w, op.To)
	v, ok := w.servers[ordinalOf(cand)]
	if cand == nil || !ok || v.err != nil {
		a := withOp(actChoose, cand, op, fmt.Sprintf("the candidate %s stopped answering; choosing again", op.To))
		a.op.To, a.op.Step = "", spec.StepElecting
		if op.Kind == spec.OperationSwitchover {
			return refuse(op, cand, a.why), true
		}
		return a, true
	}
	if lacks := lacksReceivedOf(w, cand, received(v)); lacks != "" {
		a := withOp(actChoose, cand, op, "the candidate no longer has every transaction a replica received ("+lacks+"); choosing again")
		a.op.To, a.op.Step = "", spec.StepElecting
		if op.Kind == spec.OperationSwitchover {
			return refuse(op, cand, a.why), true
		}
		return a, true
	}
	target := received(v)
	if op.Kind == spec.OperationSwitchover {
		fv, ok := w.servers[ordinalOf(from)]
		if !ok || fv.err != nil {
			return action{}, false // primaryFailure converts it
		}
		if !fv.status.ReadOnly {
			a := withOp(actDemote, from, op, op.From+" is writable again")
			a.op.Step = spec.StepDemoting
			return a, true
		}
		target = fv.status.GTIDExecuted
	}
	a := withOp(actCatchUp, cand, op, fmt.Sprintf("%s applies everything up to %s, then becomes the primary", cand.Name(), orEmpty(target.String())))
	a.gtid = target
	a.op.Step = spec.StepConfiguring
	return a, true
}

// finishIfWritable ends the operation once the new primary takes writes
// (the topology steps make it so: semi-sync on, replicas repointed,
// writable last).
func finishIfWritable(w world, op *spec.Operation) (action, bool) {
	p := primaryInstance(w)
	if p == nil || p.Name() != op.To {
		return action{}, false
	}
	v, ok := w.servers[p.Ordinal]
	if !ok || v.err != nil || v.status.ReadOnly || v.status.Replica != nil {
		return action{}, false
	}
	a := withOp(actFinish, p, op, fmt.Sprintf("%s is the writable primary, %s after the %s started", p.Name(), w.now.Sub(op.StartedAt).Truncate(time.Millisecond), strings.ToLower(op.Kind)))
	a.op = nil
	return a, true
}

// firstLine keeps an event short: a task's message may end with a whole
// error log.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func instanceByName(w world, name string) *store.Instance {
	for _, inst := range w.instances {
		if name != "" && inst.Name() == name {
			return inst
		}
	}
	return nil
}

func ordinalOf(inst *store.Instance) int {
	if inst == nil {
		return -1
	}
	return inst.Ordinal
}

// errantAction marks an instance that is about to be pointed at the
// primary but holds transactions the primary lacks, or that the primary
// refused as diverged (MariaDB's error 1236). Such transactions were never
// acknowledged to a client (semi-sync waits for a replica), so nothing
// acknowledged is lost by re-seeding it, and nothing is lost if it waits.
func errantAction(w world, inst *store.Instance, primary serverView, v serverView) (action, bool) {
	why := ""
	switch {
	case !primary.status.GTIDExecuted.Contains(v.status.GTIDExecuted):
		why = fmt.Sprintf("it has transactions the primary lacks: %s", v.status.GTIDExecuted.Subtract(primary.status.GTIDExecuted))
	case v.status.Replica != nil && v.status.Replica.LastIOErrno == errDiverged && strings.Contains(v.status.Replica.LastIOError, "diverged"):
		why = "the primary refused it as diverged: " + v.status.Replica.LastIOError
	default:
		return action{}, false
	}
	next := *inst
	next.Errant = why
	return action{kind: actMarkErrant, inst: &next, why: why}, true
}

// errDiverged is ER_MASTER_FATAL_ERROR_READING_BINLOG, which a source
// answers a replica that asks for transactions it never had ("...the slave
// has diverged..."), but also one whose position is older than its oldest
// binary log (that replica is only behind, and must be re-seeded by hand).
const errDiverged = 1236

// operationEvent is the event an operation action records.
func operationEvent(a action, op *spec.Operation) (typ, reason string) {
	kind := "Failover"
	if op != nil && op.Kind == spec.OperationSwitchover {
		kind = "Switchover"
	}
	switch a.kind {
	case actBeginFailover:
		return spec.EventWarning, "FailoverStarted"
	case actFence:
		return spec.EventNormal, "Fenced"
	case actChoose:
		if a.op != nil && a.op.To == "" {
			return spec.EventWarning, "CandidateLost"
		}
		return spec.EventNormal, "CandidateChosen"
	case actStartSwitchover:
		return spec.EventNormal, "SwitchoverStarted"
	case actRequestSwitchover:
		return spec.EventNormal, "SwitchoverRequested"
	case actDemote:
		return spec.EventNormal, "Demoted"
	case actCatchUp:
		return spec.EventNormal, "Promoted"
	case actFinish:
		return spec.EventNormal, kind + "Completed"
	case actBlock:
		return spec.EventWarning, kind + "Blocked"
	case actAbort:
		return spec.EventWarning, kind + "Aborted"
	case actMarkErrant:
		return spec.EventWarning, "ErrantInstance"
	}
	return spec.EventNormal, string(a.kind)
}

// drainBeforeRelease is the step a surplus replica needs before it goes
// (scale-down): it may hold, acknowledged, a write only it received (semi-
// sync waited for it alone). So its IO thread stops first (from then on it
// acknowledges nothing), and it is released once enough of the replicas
// that stay have everything it received. An instance whose mysqld does not
// answer, of a deleted cluster, or of an older incarnation, goes at once.
func drainBeforeRelease(w world, inst *store.Instance, deleting bool) (action, bool) {
	primary := primaryInstance(w)
	if deleting || inst.ClusterUID != w.cluster.Metadata.UID || primary == nil || inst.Launches == 0 {
		return releaseAction(w, inst, deleting), true
	}
	pv, ok := w.servers[primary.Ordinal]
	if w.cluster.Status.Operation != nil || !ok || pv.err != nil {
		return action{}, false // nothing leaves while the primary is replaced or silent
	}
	if pv.semiSync && (pv.waitCount > waitCountFor(w, primary) || !wantSemiSync(w, primary, pv)) {
		// The primary waits for fewer acknowledgements first, or turns
		// semi-sync off (scaling to one) while its replicas still
		// acknowledge what waits (semiSyncActions).
		return action{}, false
	}
	// What the leaving replica may hold: what it received if it answers,
	// else everything the primary has.
	mine := pv.status.GTIDExecuted
	v, answers := w.servers[inst.Ordinal]
	if answers = answers && v.err == nil; answers && replicatesFrom(v.status, primary) {
		if v.status.Replica.IOThread != "No" {
			return action{kind: actStopIO, inst: inst, why: "beyond spec.replicas: it stops acknowledging writes before it goes"}, true
		}
		mine = received(v)
	}
	holders, stay := 0, 0
	for _, other := range w.instances {
		if other == primary || other.Ordinal >= specReplicas(w.cluster) || !mayHoldAcknowledged(other) {
			continue
		}
		stay++ // answering or not: it may be the one holding a write
		if ov, ok := w.servers[other.Ordinal]; ok && ov.err == nil && received(ov).Contains(mine) {
			holders++
		}
	}
	if holders < min(semiSyncWaitCount(w.cluster), stay) {
		return action{}, false // the staying replicas catch up from the primary
	}
	a := releaseAction(w, inst, deleting)
	a.why = fmt.Sprintf("beyond spec.replicas; %d staying replica(s) have everything it may hold (%s)", holders, orEmpty(mine.String()))
	return a, true
}
