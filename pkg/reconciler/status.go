package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// writeStatus writes the status the observed world calls for, unless the
// stored one already says it.
func (r *ClusterReconciler) writeStatus(ctx context.Context, c *spec.MySQLCluster, w world, mesosReason string) error {
	want := decideStatus(w, mesosReason, c.Status.Phase)
	r.ClusterMetrics.Observe(c.Metadata.Namespace, c.Metadata.Name, string(want.phase), int(want.readyReplicas), instanceMetrics(w, want))
	r.ServerMetrics.Observe(c.Metadata.Namespace, c.Metadata.Name, serverCounters(w))
	if want.restore != nil && want.restore.Phase == spec.RestoreDone && restorePending(c) {
		r.lifecycleEvent(ctx, c, action{kind: actRestored, why: fmt.Sprintf("restored from %s, at GTID position %s", want.restore.From, want.restore.GTIDPosition)})
	}
	if e, lag, ok := endpointsOf(w); ok {
		published, err := r.Store.PublishEndpoints(ctx, c.Metadata.Namespace, c.Metadata.Name, c.Metadata.UID, e, lag)
		if err != nil {
			return err
		}
		want.endpoints = &published
	}
	now := w.now.Truncate(time.Second)
	stored := w.stored
	if stored == nil {
		stored = &store.ClusterState{Cluster: c}
	}
	_, err := r.Store.UpdateStatusFrom(ctx, stored, func(st *spec.ClusterStatus) error {
		st.Phase = want.phase
		st.ObservedGeneration = want.generation
		st.ReadyReplicas = want.readyReplicas
		st.Instances = want.instances
		if want.endpoints != nil {
			st.Endpoints = want.endpoints
		}
		st.ErrantInstances = want.errant
		st.Backup, st.Restore = want.backup, want.restore
		// A re-seed request is done once its instance is no longer errant.
		st.ReseedRequested = slices.DeleteFunc(st.ReseedRequested, func(name string) bool { return !slices.Contains(want.errant, name) })
		if len(st.ReseedRequested) == 0 {
			st.ReseedRequested = nil
		}
		for _, cond := range want.conditions {
			st.SetCondition(cond, now)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted or replaced while we looked
	}
	return err
}

// desiredStatus is the decision of one pass.
type desiredStatus struct {
	phase         spec.Phase
	generation    int64
	readyReplicas int32
	instances     []spec.InstanceStatus
	conditions    []spec.Condition
	endpoints     *spec.Endpoints
	errant        []string
	backup        *spec.BackupStatus
	restore       *spec.RestoreStatus
}

// decideStatus is pure: the status the observed world calls for. previous
// is the stored phase, since a cluster that ran and lost an instance is
// Degraded, not Creating.
func decideStatus(w world, mesosReason string, previous spec.Phase) desiredStatus {
	c := w.cluster
	gen := c.Metadata.Generation
	d := desiredStatus{generation: gen, backup: backupStatusOf(w), restore: restoreStatusOf(w)}
	d.conditions = append(d.conditions, spec.Condition{
		Type: spec.ConditionAccepted, Status: spec.ConditionTrue, Reason: ReasonSpecAccepted,
		Message: fmt.Sprintf("generation %d is valid and observed by the scheduler", gen), ObservedGeneration: gen,
	})
	replicas := int32(0)
	if c.Spec.Replicas != nil {
		replicas = *c.Spec.Replicas
	}
	var waiting []string
	for _, inst := range w.instances {
		is := instanceStatus(w, inst)
		d.instances = append(d.instances, is)
		if inst.Errant != "" {
			d.errant = append(d.errant, inst.Name())
		}
		if is.State == mesos.TASK_RUNNING.String() && inst.Phase == store.InstanceLaunched && int32(inst.Ordinal) < replicas {
			d.readyReplicas++
		} else if inst.Phase != store.InstanceReleasing {
			waiting = append(waiting, describeWaiting(inst, is))
		}
	}
	ready := spec.Condition{Type: spec.ConditionReady, Status: spec.ConditionFalse, ObservedGeneration: gen}
	surplus := len(w.instances) > int(d.readyReplicas)+len(waiting)
	switch {
	case c.Metadata.DeletionTimestamp != nil:
		d.phase = spec.PhaseDeleting
		ready.Reason = ReasonDeleting
		ready.Message = fmt.Sprintf("releasing %d instance(s): tasks are killed, volumes destroyed, reservations released", len(w.instances))
	case c.Status.Operation != nil:
		op := c.Status.Operation
		d.phase = runningOr(previous, spec.PhaseCreating)
		ready.Reason = op.Kind + "InProgress"
		ready.Message = fmt.Sprintf("%s %s: %s → %s, step %s", strings.ToLower(op.Kind), op.ID, op.From, orAny(op.To), op.Step)
		if op.Blocked != "" {
			ready.Message += "; blocked: " + op.Blocked
		}
	case primaryFailedAndHeld(w) != "":
		d.phase = runningOr(previous, spec.PhaseCreating)
		ready.Reason = ReasonPrimaryFailed
		ready.Message = primaryFailedAndHeld(w)
	case w.role != c.Spec.Placement.Role:
		d.phase = spec.PhaseFailed
		ready.Reason = ReasonRoleNotServed
		ready.Message = fmt.Sprintf("spec.placement.role is %q but this scheduler serves Mesos role %q: set spec.placement.role: %s, or run a scheduler with --mesos-role %s",
			c.Spec.Placement.Role, w.role, w.role, c.Spec.Placement.Role)
	case d.readyReplicas == replicas && !surplus && len(notReplicating(w)) > 0:
		d.phase = runningOr(previous, spec.PhaseCreating)
		ready.Reason = ReasonReplicationPending
		ready.Message = fmt.Sprintf("%d of %d instances running; %s", d.readyReplicas, replicas, strings.Join(notReplicating(w), "; "))
	case d.readyReplicas == replicas && !surplus:
		d.phase = spec.PhaseRunning
		ready.Status = spec.ConditionTrue
		ready.Reason = ReasonAllRunning
		ready.Message = fmt.Sprintf("%d of %d instances running", d.readyReplicas, replicas)
	case !w.subscribed:
		d.phase = runningOr(previous, spec.PhasePending)
		ready.Reason = ReasonMesosUnavailable
		ready.Message = "no Mesos master is connected, so no instance can be launched: " + mesosReason
	default:
		d.phase = runningOr(previous, spec.PhaseCreating)
		ready.Reason = ReasonInstancesPending
		ready.Message = fmt.Sprintf("%d of %d instances running", d.readyReplicas, replicas)
		if len(waiting) > 0 {
			ready.Message += "; " + strings.Join(waiting, "; ")
		}
		if surplus {
			ready.Message += "; releasing instances beyond spec.replicas"
		}
	}
	d.conditions = append(d.conditions, ready)
	return d
}

// primaryFailedAndHeld says why a failed primary is not being failed over.
func primaryFailedAndHeld(w world) string {
	p := primaryInstance(w)
	if p == nil || w.servers == nil || specReplicas(w.cluster) < 2 {
		return ""
	}
	why, failed := primaryFailure(w, p)
	held := failoverHeld(w)
	if !failed || held == "" {
		return ""
	}
	return fmt.Sprintf("the primary %s failed (%s) and is not failed over: %s", p.Name(), why, held)
}

func orAny(name string) string {
	if name == "" {
		return "(to be chosen)"
	}
	return name
}

// runningOr keeps a cluster that has run as Degraded while it is not whole.
func runningOr(previous, otherwise spec.Phase) spec.Phase {
	if previous == spec.PhaseRunning || previous == spec.PhaseDegraded {
		return spec.PhaseDegraded
	}
	return otherwise
}

func instanceStatus(w world, inst *store.Instance) spec.InstanceStatus {
	is := spec.InstanceStatus{
		Name: inst.Name(), Phase: string(inst.Phase), TaskID: inst.TaskID, AgentID: inst.AgentID,
		Host: inst.Hostname, Port: int32(inst.Port), Volume: inst.PersistenceID,
	}
	if t, ok := w.task(inst.TaskID); ok && inst.TaskID != "" {
		is.State = t.State.String()
		is.Healthy = t.Healthy != nil && *t.Healthy
		if t.Terminal() {
			is.Message = strings.TrimSpace(t.Reason + ": " + t.Message)
		}
	}
	if v, ok := w.servers[inst.Ordinal]; ok {
		describeServer(&is, w, inst, v)
	}
	return is
}

// describeServer adds what the instance's mysqld said to its status.
func describeServer(is *spec.InstanceStatus, w world, inst *store.Instance, v serverView) {
	if v.err != nil {
		is.Message = "mysqld does not answer: " + v.err.Error()
		return
	}
	is.Role = RoleReplica
	if inst.Name() == w.cluster.Status.CurrentPrimary {
		is.Role = RolePrimary
	}
	ro := v.status.ReadOnly
	is.ReadOnly = &ro
	is.GTIDExecuted = v.status.GTIDExecuted.String()
	if r := v.status.Replica; r != nil {
		is.Replication = &spec.ReplicationStatus{
			Source: fmt.Sprintf("%s:%d", r.SourceHost, r.SourcePort), IORunning: r.IORunning, SQLRunning: r.SQLRunning,
			SecondsBehind: r.SecondsBehind, LastError: strings.TrimSpace(r.LastIOError + " " + r.LastSQLError),
		}
	}
}

// notReplicating says what keeps the servers from being Ready: the primary
// must be writable and every other running instance must replicate from it
// with both threads running. Empty when tasks run no mysqld.
func notReplicating(w world) []string {
	if w.servers == nil {
		return nil
	}
	primary := primaryInstance(w)
	if primary == nil {
		return []string{"no primary elected yet"}
	}
	var out []string
	if v, ok := w.servers[primary.Ordinal]; !ok || v.err != nil || v.status.ReadOnly {
		out = append(out, fmt.Sprintf("the primary %s is not writable yet", primary.Name()))
	}
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == primary || inst.Phase != store.InstanceLaunched || !ok {
			continue
		}
		switch {
		case inst.Errant != "":
			out = append(out, fmt.Sprintf("%s is errant (%s): it serves nothing until re-seeded (spec.failover.reseedErrant: true)", inst.Name(), inst.Errant))
		case v.err != nil:
			out = append(out, fmt.Sprintf("%s does not answer", inst.Name()))
		case !replicatesFrom(v.status, primary) || !v.status.Replica.IORunning || !v.status.Replica.SQLRunning:
			out = append(out, fmt.Sprintf("%s does not replicate from %s yet", inst.Name(), primary.Name()))
		}
	}
	return out
}

func describeWaiting(inst *store.Instance, is spec.InstanceStatus) string {
	switch {
	case inst.Phase == store.InstancePending && !inst.NotBefore.IsZero():
		return fmt.Sprintf("%s crash-loops (%d quick failures); next launch not before %s", is.Name, inst.QuickFailures, inst.NotBefore.Format(time.RFC3339))
	case inst.Phase == store.InstancePending && inst.AgentID != "":
		return fmt.Sprintf("%s waits for an offer from its agent %s", is.Name, inst.AgentID)
	case inst.Phase == store.InstancePending:
		return fmt.Sprintf("%s waits for an offer with %.3g cpus, %.0f MiB mem, %.0f MiB disk and a port", is.Name,
			inst.Request.CPUs, inst.Request.MemMiB, inst.Request.DiskMiB)
	case is.State == "":
		return fmt.Sprintf("%s: task %s launched", is.Name, inst.TaskID)
	default:
		return fmt.Sprintf("%s is %s", is.Name, is.State)
	}
}

// endpointsOf is where clients should connect: the primary once it is
// writable, and the replicas that replicate from it. ok is false while
// there is nothing to publish (no mysqld, or no writable primary yet).
func endpointsOf(w world) (spec.Endpoints, map[string]float64, bool) {
	primary := primaryInstance(w)
	if w.servers == nil || primary == nil || w.cluster.Metadata.DeletionTimestamp != nil {
		return spec.Endpoints{}, nil, false
	}
	if op := w.cluster.Status.Operation; op != nil && before(op.Step, spec.StepConfiguring) && op.Step != spec.StepRequested {
		// The primary is being replaced: no client should write to it.
		return spec.Endpoints{}, nil, true
	}
	pv, ok := w.servers[primary.Ordinal]
	if !ok || pv.err != nil || pv.status.ReadOnly {
		return spec.Endpoints{}, nil, false
	}
	lag := map[string]float64{}
	e := spec.Endpoints{Primary: fmt.Sprintf("%s:%d", primary.Hostname, primary.Port)}
	for _, inst := range w.instances {
		v, ok := w.servers[inst.Ordinal]
		if inst == primary || !ok || v.err != nil || inst.Errant != "" || !replicatesFrom(v.status, primary) || !v.status.Replica.IORunning || !v.status.Replica.SQLRunning {
			continue
		}
		addr := fmt.Sprintf("%s:%d", inst.Hostname, inst.Port)
		e.Replicas = append(e.Replicas, addr)
		if s := v.status.Replica.SecondsBehind; s != nil {
			lag[addr] = float64(*s)
		}
	}
	return e, lag, true
}

// instanceMetrics is what the metrics show of each instance.
func instanceMetrics(w world, d desiredStatus) []metrics.Instance {
	out := make([]metrics.Instance, 0, len(d.instances))
	primarySeq, primaryKnown := primaryDomain0(w)
	for _, is := range d.instances {
		m := metrics.Instance{Name: is.Name, Up: is.ReadOnly != nil, ReadOnly: is.ReadOnly != nil && *is.ReadOnly, Role: is.Role, State: orPending(is.State)}
		if r := is.Replication; r != nil {
			m.Replica, m.IORunning, m.SQLRunning = true, r.IORunning, r.SQLRunning
		}
		if primaryKnown && is.Role == RoleReplica {
			if set, err := mysql.ParseGTIDSet(w.cluster.Spec.Flavor, is.GTIDExecuted); err == nil {
				_, seq, _ := set.Domain(0)
				lag := primarySeq - min(seq, primarySeq)
				m.GTIDLag = &lag
			}
		}
		switch {
		case slices.Contains(d.errant, is.Name):
			m.Role = "errant"
		case m.Role == "":
			m.Role = "none"
		}
		if r := is.Replication; r != nil && r.SecondsBehind != nil {
			lag := time.Duration(*r.SecondsBehind) * time.Second
			m.Lag = &lag
		}
		out = append(out, m)
	}
	return out
}

// serverCounters are the status counters each answering mysqld reported.
func serverCounters(w world) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, inst := range w.instances {
		if v, ok := w.servers[inst.Ordinal]; ok && v.err == nil && len(v.status.Counters) > 0 {
			out[inst.Name()] = v.status.Counters
		}
	}
	return out
}

// primaryDomain0 is the primary's last sequence number in GTID domain 0.
func primaryDomain0(w world) (uint64, bool) {
	p := primaryInstance(w)
	if p == nil {
		return 0, false
	}
	v, ok := w.servers[p.Ordinal]
	if !ok || v.err != nil {
		return 0, false
	}
	_, seq, ok := v.status.GTIDExecuted.Domain(0)
	return seq, ok
}

func orPending(state string) string {
	if state == "" {
		return "Pending"
	}
	return state
}
