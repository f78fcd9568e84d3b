package reconciler

import (
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// actRestored is not an action a pass takes: it names the event recorded
// when a restored cluster's first member serves.
const actRestored actionKind = "Restored"

// restorePending: the cluster was created from a backup and its first
// member has not served yet. Until it has, only that member exists; the
// others are seeded from it afterwards, as any new replica is.
func restorePending(c *spec.MySQLCluster) bool {
	return c.Spec.Restore != nil && (c.Status.Restore == nil || c.Status.Restore.Phase != spec.RestoreDone)
}

// restoreStatusOf follows spec.restore: Restoring until the first primary
// is writable, then Restored for good. A failed attempt's task message (a
// corrupt or missing backup) shows while the member keeps being retried.
func restoreStatusOf(w world) *spec.RestoreStatus {
	c := w.cluster
	if c.Spec.Restore == nil {
		return nil
	}
	if !restorePending(c) {
		return c.Status.Restore
	}
	st := &spec.RestoreStatus{From: c.Spec.Restore.From, Phase: spec.RestoreRunning}
	if p := primaryInstance(w); p != nil {
		if v, ok := w.servers[p.Ordinal]; ok && v.err == nil && !v.status.ReadOnly {
			st.Phase, st.GTIDPosition = spec.RestoreDone, v.status.GTIDExecuted.String()
			st.CompletedAt = ptrTime(w.now.Truncate(time.Second))
			return st
		}
	}
	first := w.instanceRecord(0)
	if t, known := w.task(first.TaskID); first.TaskID != "" && known && t.Terminal() {
		st.Message = taskEnd(t)
	} else if c.Status.Restore != nil {
		st.Message = c.Status.Restore.Message
	}
	return st
}

// restoreFor is what the first member of a restoring cluster restores.
func (b Backups) restoreFor(c *spec.MySQLCluster) *taskspec.Restore {
	cluster, id, _ := spec.SplitRestoreFrom(c.Spec.Restore.From)
	at, gtid, _ := spec.ParsePointInTime(c.Spec.Restore.PointInTime) // validated
	return &taskspec.Restore{Backup: taskspec.BackupRef{
		Target:    taskspec.Target{URL: b.RestoreDestination(c), HadoopUser: b.HadoopUser},
		Namespace: c.Metadata.Namespace, Cluster: cluster, ID: id,
	}, Replay: c.Spec.Restore.PointInTime != "", StopTime: at, StopGTID: gtid}
}
