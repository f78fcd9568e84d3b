package reconciler

import (
	"context"
	"fmt"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// ArchiverStore keeps the record of each cluster's binlog archiver.
type ArchiverStore interface {
	GetArchiver(ctx context.Context, ns, name string) (*store.Archiver, error)
	PutArchiver(ctx context.Context, a *store.Archiver) error
	DeleteArchiver(ctx context.Context, a *store.Archiver) error
}

// Archiver actions.
const (
	actStartArchiver     actionKind = "StartArchiver"     // new record, Pending, with a source
	actRelaunchArchiver  actionKind = "RelaunchArchiver"  // task over → Pending, a source chosen afresh
	actKillArchiver      actionKind = "KillArchiver"      // wrong source, or no longer wanted
	actForgetArchiver    actionKind = "DeleteArchiver"    // not wanted, task gone
	actReconcileArchiver actionKind = "ReconcileArchiver" // ask Mesos about its task
)

// ArchiverServerID is the replica server id archivers present; instances
// use their ordinal + 1, at most 15.
const ArchiverServerID = 1000

// archiverTaskID names an archiver's task: four parts, like every task id
// of the cluster, so ClusterOfTask finds its cluster.
func archiverTaskID(a *store.Archiver) string {
	return fmt.Sprintf("%sarchiver.%d-%s", TaskIDPrefix(a.Namespace, a.Cluster), a.Launches, shortID())
}

// wantsArchiver: spec.backup.binlogArchiving, while the cluster lives.
func wantsArchiver(c *spec.MySQLCluster) bool {
	return c.Metadata.DeletionTimestamp == nil && c.Spec.Backup != nil && c.Spec.Backup.BinlogArchiving
}

// archiverActions keep one archiver streaming from a good source: a healthy
// replica (its binary log holds only transactions every failover keeps),
// the primary when no replica is healthy. It waits while a failover or
// switchover runs.
func archiverActions(w world) []action {
	a := w.archiver
	want := wantsArchiver(w.cluster)
	if a == nil {
		if !want || w.cluster.Status.Operation != nil {
			return nil
		}
		if src, why := archiverSource(w); src != nil {
			rec := &store.Archiver{Namespace: w.cluster.Metadata.Namespace, Cluster: w.cluster.Metadata.Name,
				ClusterUID: w.cluster.Metadata.UID, Phase: store.InstancePending, Role: w.cluster.Spec.Placement.Role,
				Destination: w.backupDestination, Since: w.now}
			setArchiverSource(rec, src)
			return []action{{kind: actStartArchiver, archiver: rec, why: "spec.backup.binlogArchiving: " + why}}
		}
		return nil
	}
	if a.Phase != store.InstanceLaunched {
		if !want {
			return []action{{kind: actForgetArchiver, archiver: a, why: "binlog archiving is off"}}
		}
		return nil
	}
	t, known := w.task(a.TaskID)
	switch {
	case known && t.Terminal():
		if !want {
			return []action{{kind: actForgetArchiver, archiver: a, why: "binlog archiving is off and its task is over"}}
		}
		return relaunchArchiver(w, a, t)
	case !known && w.now.Sub(a.Since) > unknownTaskGrace && !w.recentlyAsked(a.TaskID):
		return []action{{kind: actReconcileArchiver, archiver: a, why: "Mesos has not reported the archiver's task yet"}}
	case w.recentlyKilled(a.TaskID):
		return nil
	case !want:
		return []action{{kind: actKillArchiver, archiver: a, why: "binlog archiving is off"}}
	case a.Destination != w.backupDestination:
		return []action{{kind: actKillArchiver, archiver: a,
			why: fmt.Sprintf("the backup destination is now %s (it archives to %s); it restarts there", w.backupDestination, a.Destination)}}
	case known && t.State == mesos.TASK_UNREACHABLE:
		// Mesos lost its agent (after its health checks gave up): an
		// archiver starts elsewhere. Should the old one come back, both
		// archive for a while; their segments overlap, which a replay
		// tolerates.
		return relaunchArchiver(w, a, t)
	case known && w.cluster.Status.Operation == nil && !goodArchiverSource(w, a.Instance):
		return []action{{kind: actKillArchiver, archiver: a,
			why: fmt.Sprintf("it streams from %s, which is no longer the best source; it restarts where the archive ends", a.Instance)}}
	}
	return nil
}

func relaunchArchiver(w world, a *store.Archiver, t framework.Task) []action {
	src, why := archiverSource(w)
	if src == nil || w.cluster.Status.Operation != nil {
		return nil
	}
	next := *a
	next.Phase, next.Since, next.TaskID, next.Message = store.InstancePending, w.now, "", taskEnd(t)
	next.Destination = w.backupDestination
	if w.now.Sub(a.Since) < quickFailure && t.State != mesos.TASK_KILLED {
		next.QuickFailures++
		next.NotBefore = w.now.Add(crashBackoff(next.QuickFailures))
	} else {
		next.QuickFailures, next.NotBefore = 0, time.Time{}
	}
	setArchiverSource(&next, src)
	return []action{{kind: actRelaunchArchiver, archiver: &next, why: fmt.Sprintf("its task ended (%s); %s", taskEnd(t), why)}}
}

func setArchiverSource(a *store.Archiver, src *store.Instance) {
	a.Instance, a.AgentID, a.SourceHost, a.SourcePort = src.Name(), src.AgentID, src.Hostname, int(src.Port)
}

// archiverSource is the member an archiver streams from: a healthy
// replica, the least behind; the primary only in a cluster of one. A
// cluster whose replicas are not healthy yet (being created, or all
// broken) waits: the binary logs stay on the members until it can start.
func archiverSource(w world) (*store.Instance, string) {
	src, why := backupSource(w)
	if src != nil && src.Name() == w.cluster.Status.CurrentPrimary && specReplicas(w.cluster) > 1 {
		return nil, ""
	}
	return src, why
}

// goodArchiverSource: the member still serves the cluster and is not the
// primary while a replica could serve instead. A replica whose source
// died is still good: what it has is kept by any failover, and the
// archiver reconnects by itself while it restarts.
func goodArchiverSource(w world, name string) bool {
	for _, inst := range w.instances {
		if inst.Name() != name {
			continue
		}
		if inst.Errant != "" || inst.Phase == store.InstanceReleasing {
			return false
		}
		if name == w.cluster.Status.CurrentPrimary {
			best, _ := archiverSource(w)
			return best == nil || best.Name() == name
		}
		return true
	}
	return false
}

// performArchiver carries out an archiver action.
func (r *ClusterReconciler) performArchiver(ctx context.Context, c *spec.MySQLCluster, a action) error {
	switch a.kind {
	case actStartArchiver, actRelaunchArchiver:
		if err := r.Store.PutArchiver(ctx, a.archiver); err != nil {
			return err
		}
		r.revive(ctx)
		r.archiverEvent(ctx, c, a)
		return nil
	case actKillArchiver:
		r.mark(&r.killed, a.archiver.TaskID)
		return r.Mesos.Kill(ctx, a.archiver.TaskID, a.archiver.AgentID)
	case actForgetArchiver:
		return r.Store.DeleteArchiver(ctx, a.archiver)
	case actReconcileArchiver:
		r.mark(&r.asked, a.archiver.TaskID)
		return r.Mesos.ReconcileTasks(ctx, []framework.TaskRef{{ID: a.archiver.TaskID, AgentID: a.archiver.AgentID}})
	}
	return fmt.Errorf("not an archiver action: %s", a.kind)
}

func (r *ClusterReconciler) archiverEvent(ctx context.Context, c *spec.MySQLCluster, a action) {
	typ, reason := spec.EventNormal, "ArchiverStarted"
	if a.kind == actRelaunchArchiver {
		typ, reason = spec.EventWarning, "ArchiverRestarted"
	}
	ev := spec.Event{Time: r.now(), Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, Type: typ, Reason: reason,
		Instance: a.archiver.Instance, Message: a.why}
	if err := r.Store.RecordEvent(ctx, ev); err != nil {
		r.logger().Warn("cannot record an event", "cluster", c.Key(), "reason", reason, "err", err)
	}
}

// archiverStatusOf is status.backup.archiver.
func archiverStatusOf(w world) *spec.ArchiverStatus {
	a := w.archiver
	if a == nil {
		return nil
	}
	st := &spec.ArchiverStatus{Instance: a.Instance, TaskID: a.TaskID, Message: a.Message}
	if t, ok := w.task(a.TaskID); ok && a.TaskID != "" {
		st.State = t.State.String()
	} else {
		st.State = string(a.Phase)
	}
	return st
}
