package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// EventRecorder keeps a cluster's events (pkg/store implements it).
type EventRecorder interface {
	RecordEvent(ctx context.Context, ev spec.Event) error
}

// performOperation carries out a failover or switchover step, then records
// its event.
func (r *ClusterReconciler) performOperation(ctx context.Context, c *spec.MySQLCluster, w world, a action) error {
	var err error
	switch a.kind {
	case actBeginFailover, actChoose, actStartSwitchover, actRequestSwitchover, actBlock, actAbort:
		err = r.writeOperation(ctx, c, a.op, nil)
	case actFence:
		err = r.fence(ctx, c, w, a)
	case actDemote:
		err = r.demote(ctx, c, w, a)
	case actCatchUp:
		if err = r.catchUp(ctx, c, w, a); err != nil {
			return r.catchUpFailed(ctx, c, w, a, err)
		}
	case actFinish:
		err = r.writeOperation(ctx, c, nil, func(st *spec.ClusterStatus) {
			if op := c.Status.Operation; op.Kind == spec.OperationFailover {
				st.LastFailover = &spec.FailoverRecord{ID: op.ID, From: op.From, To: op.To, At: w.now}
			}
		})
	case actMarkErrant:
		err = r.fenceErrant(ctx, c, w, a.inst)
		if err == nil && w.instanceRecord(a.inst.Ordinal).Errant == "" {
			err = r.Store.PutInstance(ctx, a.inst)
		}
	default:
		return fmt.Errorf("not an operation action: %s", a.kind)
	}
	if err != nil {
		return err
	}
	r.recordEvent(ctx, c, w, a)
	r.countOperation(c, w, a)
	return nil
}

// countOperation counts an operation that this action ended.
func (r *ClusterReconciler) countOperation(c *spec.MySQLCluster, w world, a action) {
	op := c.Status.Operation
	if op == nil {
		return
	}
	kind := strings.ToLower(op.Kind)
	switch {
	case a.kind == actFinish:
		r.OperationMetrics.Ended(c.Metadata.Namespace, c.Metadata.Name, kind, metrics.ResultCompleted, w.now.Sub(op.StartedAt))
	case a.kind == actAbort && a.op == nil:
		r.OperationMetrics.Ended(c.Metadata.Namespace, c.Metadata.Name, kind, metrics.ResultAborted, 0)
	}
}

// writeOperation replaces status.operation with next, provided it is still
// the one this pass observed; also applies to the rest of the status.
func (r *ClusterReconciler) writeOperation(ctx context.Context, c *spec.MySQLCluster, next *spec.Operation, also func(*spec.ClusterStatus)) error {
	observed := opID(c.Status.Operation)
	_, err := r.Store.UpdateStatus(ctx, c.Metadata.Namespace, c.Metadata.Name, c.Metadata.UID, func(st *spec.ClusterStatus) error {
		if cur := opID(st.Operation); cur != observed {
			return fmt.Errorf("%w: status.operation is %q, not %q as observed", store.ErrConflict, cur, observed)
		}
		st.Operation = next
		if also != nil {
			also(st)
		}
		return nil
	})
	return err
}

func opID(op *spec.Operation) string {
	if op == nil {
		return ""
	}
	return op.ID
}

// fence stops the replicas' IO threads, makes the old primary read-only
// and kills its task, whatever of it is still needed, all at once.
func (r *ClusterReconciler) fence(ctx context.Context, c *spec.MySQLCluster, w world, a action) error {
	from := a.inst
	work := fenceWork(w, from)
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg, io sync.WaitGroup
	for _, inst := range work.stopIO {
		io.Go(func() {
			if err := r.onServer(ctx, c, w, inst, func(ctx context.Context, s Server) error { return s.StopReplicaIO(ctx) }); err != nil {
				fail(err)
			}
		})
	}
	if work.readOnly {
		wg.Go(func() {
			// Once the replicas fetch no more: no acknowledgement can then
			// release a commit while stopWrites disconnects the clients
			// (one would let the groups queued behind it commit too, their
			// leaders killed, before every session in them is
			// disconnected). Best effort: the replicas' stopped IO threads
			// are the fence that holds even when the old primary cannot be
			// reached.
			io.Wait()
			if err := r.onServer(ctx, c, w, from, func(ctx context.Context, s Server) error { return stopWrites(ctx, s, 0) }); err != nil {
				r.logger().Warn("cannot make the old primary read-only", "cluster", c.Key(), "instance", from.Name(), "err", err)
			}
		})
	}
	if work.kill {
		r.mark(&r.killed, from.TaskID)
		wg.Go(func() {
			if err := r.Mesos.Kill(ctx, from.TaskID, from.AgentID); err != nil {
				r.logger().Warn("cannot kill the old primary's task", "cluster", c.Key(), "task", from.TaskID, "err", err)
			}
		})
	}
	io.Wait()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if a.op.Step != spec.StepFencing {
		return nil
	}
	a.op.Step = spec.StepElecting
	return r.writeOperation(ctx, c, a.op, nil)
}

// demote makes the primary read-only within demoteBudget, killing the
// client connections that hold it back if need be, then disconnects every
// client so that applications reconnect to the new primary.
func (r *ClusterReconciler) demote(ctx context.Context, c *spec.MySQLCluster, w world, a action) error {
	err := r.onServer(ctx, c, w, a.inst, func(ctx context.Context, s Server) error { return stopWrites(ctx, s, demoteBudget) })
	if err != nil {
		return err
	}
	a.op.Step = spec.StepCatchingUp
	return r.writeOperation(ctx, c, a.op, nil)
}

// stopWrites makes a server read-only and disconnects every client but
// Mysos' own. Running transactions get grace to finish; after it, or at
// once without grace, the sessions holding read_only back are killed.
//
// That matters beyond patience: a commit waiting for a semi-sync
// acknowledgement that cannot come (a primary cut off from its replicas)
// holds SET GLOBAL read_only back for ever, and killing its session is the
// only way to end the wait without acknowledging it to its own client. But
// with the AFTER_SYNC wait point and binary log group commit only a
// group's leader waits for the acknowledgement; the commits that joined its
// group, or queued behind it while it waited (a client that gave up and
// reconnected, again and again, leaves a backlog of them), wait for the
// leader. Killing the leader lets its group commit, then every queued
// group whose leader is killed too, and a session among them that is
// still connected is told OK for a commit no replica has (MariaDB 10.11
// does exactly that; see TestFormerPrimaryBacklogAcknowledgesNothing). So:
//
//  1. read_only is started first, on a connection of its own
//     (StartReadOnly): while it waits for the commits in progress, every
//     new write waits behind it, then fails. No client, reconnecting or
//     not, can join the backlog from then on.
//  2. KillConnections disconnects every client, the sessions waiting for
//     an acknowledgement last: by the time a leader's kill lets the backlog
//     commit, every session in it is disconnected, so nobody is told OK.
//  3. read_only then takes effect; if it does not within readOnlyAttempt,
//     the kills are repeated (readOnlyAttempts in all).
//  4. The clients that connected meanwhile are disconnected.
func stopWrites(ctx context.Context, s Server, grace time.Duration) error {
	if grace > 0 {
		try, cancel := context.WithTimeout(ctx, grace)
		done := s.SetReadOnly(try, true) == nil
		cancel()
		if done {
			return s.KillConnections(ctx, AdminUser, ReplicationUser)
		}
	}
	barrier, err := s.StartReadOnly(ctx)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := s.KillConnections(ctx, AdminUser, ReplicationUser); err != nil {
			return err
		}
		try, cancel := context.WithTimeout(ctx, readOnlyAttempt)
		err = barrier.Wait(try)
		cancel()
		if err == nil {
			break
		}
		if attempt == readOnlyAttempts {
			return fmt.Errorf("read_only did not take after %d attempts: %w", readOnlyAttempts, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			// The statement failed (not merely slow): start another
			// before anything is killed again.
			if barrier, err = s.StartReadOnly(ctx); err != nil {
				return err
			}
		}
	}
	return s.KillConnections(ctx, AdminUser, ReplicationUser)
}

// stopWrites tries this often, this long each time.
const (
	readOnlyAttempts = 5
	readOnlyAttempt  = 500 * time.Millisecond
)

// catchUp waits for the candidate, detaches it from its source and records
// it as the primary. It stays read-only: the topology steps turn semi-sync
// on, repoint the replicas and open it to writes last.
func (r *ClusterReconciler) catchUp(ctx context.Context, c *spec.MySQLCluster, w world, a action) error {
	err := r.onServer(ctx, c, w, a.inst, func(ctx context.Context, s Server) error {
		wait, cancel := context.WithTimeout(ctx, catchUpTimeout)
		defer cancel()
		if err := s.WaitForGTID(wait, a.gtid); err != nil {
			return err
		}
		return s.ResetReplication(ctx)
	})
	if err != nil {
		return err
	}
	name := a.inst.Name()
	return r.writeOperation(ctx, c, a.op, func(st *spec.ClusterStatus) { st.CurrentPrimary = name })
}

// catchUpFailed: a candidate that cannot apply what it has (its applier
// stopped with an error, or too slow) blocks a failover, which says why and
// keeps trying; a switchover is given up, and its old primary, read-only
// but holding everything, is opened again by the topology steps.
func (r *ClusterReconciler) catchUpFailed(ctx context.Context, c *spec.MySQLCluster, w world, a action, cause error) error {
	op := *c.Status.Operation
	next := action{kind: actBlock, inst: a.inst, op: &op, why: "the candidate does not catch up: " + cause.Error()}
	if op.Kind == spec.OperationSwitchover {
		next.kind, next.op = actAbort, nil
	} else {
		next.op.Blocked = next.why
	}
	if err := r.writeOperation(ctx, c, next.op, nil); err != nil {
		return errors.Join(cause, err)
	}
	r.recordEvent(ctx, c, w, next)
	return cause
}

// onServer runs f on an instance's mysqld with the usual timeout.
func (r *ClusterReconciler) onServer(ctx context.Context, c *spec.MySQLCluster, w world, inst *store.Instance, f func(context.Context, Server) error) error {
	if inst == nil {
		return errors.New("no such instance")
	}
	srv, err := r.open(c.Spec.Flavor, inst, w.passwords, w.tlsCA)
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	if err := f(ctx, srv); err != nil {
		return fmt.Errorf("%s: %w", inst.Name(), err)
	}
	return nil
}

// recordEvent keeps an event for a's effect; losing one only loses history,
// so a failure is logged, not returned.
func (r *ClusterReconciler) recordEvent(ctx context.Context, c *spec.MySQLCluster, w world, a action) {
	op := c.Status.Operation
	if a.op != nil {
		op = a.op
	}
	typ, reason := operationEvent(a, op)
	ev := spec.Event{Time: r.now(), Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, Type: typ, Reason: reason,
		Instance: instanceName(a.inst), Message: a.why}
	if a.kind == actFence {
		ev.Message = fenceWork(w, a.inst).String()
		if ev.Message == "" {
			ev.Message = "nothing left to fence"
		}
	}
	if op != nil && a.kind != actMarkErrant {
		ev.Operation = op.ID
		ev.Elapsed = spec.Duration(r.now().Sub(op.StartedAt).Truncate(100 * time.Microsecond).String())
	}
	if err := r.Store.RecordEvent(ctx, ev); err != nil {
		r.logger().Warn("cannot record an event", "cluster", c.Key(), "reason", reason, "err", err)
	}
}

// trackSilence notes since when the running primary's mysqld has not
// answered, for primaryFailure.
func (r *ClusterReconciler) trackSilence(w world) {
	p := primaryInstance(w)
	if p == nil || w.servers == nil || !r.running(p) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := w.servers[p.Ordinal]; ok && v.err == nil {
		delete(r.silent, p.TaskID)
		return
	}
	if r.silent == nil {
		r.silent = map[string]time.Time{}
	}
	if _, ok := r.silent[p.TaskID]; !ok {
		r.silent[p.TaskID] = w.now
	}
}

func (r *ClusterReconciler) silentSince(taskID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.silent[taskID]
	return at, ok
}

func (r *ClusterReconciler) isSilent(taskID string) bool {
	_, ok := r.silentSince(taskID)
	return ok
}

// fenceErrant makes an errant instance read-only and disconnects its
// clients before anything else: a former primary back from a partition may
// still be writable, with commits waiting for an acknowledgement that must
// never come. stopWrites ends them with an error to every client (they
// stay on this instance alone, which is re-seeded); the primary side of
// semi-sync stays on.
func (r *ClusterReconciler) fenceErrant(ctx context.Context, c *spec.MySQLCluster, w world, inst *store.Instance) error {
	return r.onServer(ctx, c, w, inst, func(ctx context.Context, s Server) error { return stopWrites(ctx, s, 0) })
}
