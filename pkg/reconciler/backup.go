package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// BackupStore keeps backup job records (see store.BackupJob).
type BackupStore interface {
	ListBackupJobs(ctx context.Context, ns, name string) ([]*store.BackupJob, error)
	PutBackupJob(ctx context.Context, j *store.BackupJob) error
	DeleteBackupJob(ctx context.Context, j *store.BackupJob) error
}

// Backups says where backups go and what their tasks get.
type Backups struct {
	// DefaultDestination serves clusters whose spec names none.
	DefaultDestination string
	// HadoopUser is the user HDFS targets see.
	HadoopUser string
	// CPUs and MemMiB are a backup or archiver task's own resources; the
	// executor's overhead comes on top.
	CPUs, MemMiB float64
	// SegmentSeconds is how often the binlog archiver closes a segment.
	SegmentSeconds float64
}

// Default backup task resources, and how often archived binlogs are shipped.
const (
	DefaultBackupCPUs     = 0.5
	DefaultBackupMemMiB   = 256
	DefaultSegmentSeconds = 10
)

// Destination is where c's backups go.
func (b Backups) Destination(c *spec.MySQLCluster) string {
	if c.Spec.Backup != nil && c.Spec.Backup.Destination != "" {
		return c.Spec.Backup.Destination
	}
	return b.DefaultDestination
}

// RestoreDestination is where the backup c restores from is kept.
func (b Backups) RestoreDestination(c *spec.MySQLCluster) string {
	if r := c.Spec.Restore; r != nil && r.Destination != "" {
		return r.Destination
	}
	return b.Destination(c)
}

// Open opens a backup target.
func (b Backups) Open(url string) (backup.Target, error) {
	if url == "" {
		return nil, errors.New("no backup destination: set spec.backup.destination or the scheduler's --backup-destination")
	}
	return backup.OpenTarget(url, backup.Options{HadoopUser: b.HadoopUser})
}

// Backup actions.
const (
	actScheduleBackup  actionKind = "ScheduleBackup"
	actAssignBackup    actionKind = "AssignBackupSource"
	actFinishBackup    actionKind = "FinishBackup"
	actFailBackup      actionKind = "FailBackup"
	actReconcileBackup actionKind = "ReconcileBackupTask"
	actTrimBackupJobs  actionKind = "TrimBackupJobs"
)

// backupPendingTimeout fails a backup that found no member to copy or no
// offer to run on for this long, and backupTimeout one whose task runs
// this long, so that neither holds up the next.
const (
	backupPendingTimeout = 10 * time.Minute
	backupTimeout        = 6 * time.Hour
)

// backupTaskID names a backup's task; like an instance's task id it has
// four dot-separated parts, so ClusterOfTask finds its cluster.
func backupTaskID(j *store.BackupJob) string {
	return TaskIDPrefix(j.Namespace, j.Cluster) + "backup." + j.ID
}

// backupActions: at most one backup of a cluster is active at a time (the
// oldest unfinished job); a scheduled one is requested when the schedule is
// due and none is.
func backupActions(w world) []action {
	c := w.cluster
	if c.Metadata.DeletionTimestamp != nil {
		return nil
	}
	var out []action
	if j := activeJob(w.jobs); j != nil {
		if a, ok := jobAction(w, j); ok {
			out = append(out, a)
		}
	} else if at, ok := scheduleDue(w); ok {
		j := store.NewBackupJob(c, spec.BackupScheduled, w.now, w.backupDestination)
		j.ScheduledFor = at
		out = append(out, action{kind: actScheduleBackup, job: j,
			why: fmt.Sprintf("spec.backup.schedule %q fired at %s", c.Spec.Backup.Schedule, at.Format(time.RFC3339))})
	}
	if old := surplusJobs(w.jobs); len(old) > 0 {
		out = append(out, action{kind: actTrimBackupJobs, job: old[0],
			why: fmt.Sprintf("only the last %d finished backup jobs are kept (the backups stay in their target)", store.MaxBackupJobsPerCluster)})
	}
	return out
}

// ActiveBackupJob is the backup job being worked on, nil if none.
func ActiveBackupJob(jobs []*store.BackupJob) *store.BackupJob { return activeJob(jobs) }

func activeJob(jobs []*store.BackupJob) *store.BackupJob {
	for _, j := range jobs {
		if !j.Finished() {
			return j
		}
	}
	return nil
}

// jobAction is the next step of the active job.
func jobAction(w world, j *store.BackupJob) (action, bool) {
	switch j.Phase {
	case store.BackupPending:
		if j.Instance == "" {
			if src, why := backupSource(w); src != nil {
				next := *j
				next.Instance, next.AgentID = src.Name(), src.AgentID
				next.SourceHost, next.SourcePort = src.Hostname, int(src.Port)
				return action{kind: actAssignBackup, job: &next, inst: src, why: why}, true
			}
		}
		if w.now.Sub(j.RequestedAt) > backupPendingTimeout {
			why := "no healthy member to copy"
			if j.Instance != "" {
				why = "no offer had room for the backup task"
			}
			return failJob(w, j, fmt.Sprintf("%s for %s", why, backupPendingTimeout)), true
		}
	case store.BackupLaunched:
		t, known := w.task(j.TaskID)
		switch {
		case !known && w.now.Sub(j.LaunchedAt) > unknownTaskGrace && !w.recentlyAsked(j.TaskID):
			return action{kind: actReconcileBackup, job: j, why: "Mesos has not reported the backup task yet"}, true
		case known && t.State == mesos.TASK_FINISHED:
			return action{kind: actFinishBackup, job: j, why: "its task finished"}, true
		case known && t.Terminal():
			return failJob(w, j, taskEnd(t)), true
		case w.now.Sub(j.LaunchedAt) > backupTimeout:
			// Stuck (a stalled destination) or cut off (TASK_UNREACHABLE):
			// it would hold every later backup up. Its task is killed.
			return failJob(w, j, fmt.Sprintf("not finished after %s (task %s); killed", backupTimeout, t.State)), true
		}
	}
	return action{}, false
}

func failJob(w world, j *store.BackupJob, why string) action {
	next := *j
	next.Phase, next.FinishedAt, next.Message = store.BackupFailed, w.now, why
	return action{kind: actFailBackup, job: &next, why: why}
}

func taskEnd(t framework.Task) string {
	msg := fmt.Sprintf("task %s is %s", t.ID, t.State)
	if t.Reason != "" {
		msg += " (" + t.Reason + ")"
	}
	if t.Message != "" {
		msg += ": " + t.Message
	}
	return msg
}

// backupSource picks the member a backup copies: a replica that replicates
// (so the primary's writes are not slowed), the least behind first; the
// primary when no replica is healthy.
func backupSource(w world) (*store.Instance, string) {
	p := primaryInstance(w)
	if p == nil {
		return nil, ""
	}
	targets := healthyTargets(w, p)
	slices.SortStableFunc(targets, func(a, b *store.Instance) int {
		return lagOf(w, a) - lagOf(w, b)
	})
	if len(targets) > 0 {
		return targets[0], fmt.Sprintf("%s is a healthy replica: the primary's writes are not slowed", targets[0].Name())
	}
	if v, ok := w.servers[p.Ordinal]; ok && v.err == nil && !v.status.ReadOnly {
		return p, "no replica is healthy, so the primary is copied"
	}
	return nil, ""
}

func lagOf(w world, inst *store.Instance) int {
	r := w.servers[inst.Ordinal].status.Replica
	if r == nil || r.SecondsBehind == nil {
		return 1 << 30
	}
	return int(*r.SecondsBehind)
}

// scheduleDue is the latest firing of the schedule that no job served yet,
// if it is due: after a long outage one backup is taken, not one per
// missed firing.
func scheduleDue(w world) (time.Time, bool) {
	c := w.cluster
	if c.Spec.Backup == nil || c.Spec.Backup.Schedule == "" {
		return time.Time{}, false
	}
	next, ok := spec.NextBackup(c.Spec.Backup.Schedule, lastScheduled(w))
	if !ok || next.After(w.now) {
		return time.Time{}, false
	}
	for range 10000 {
		after, _ := spec.NextBackup(c.Spec.Backup.Schedule, next)
		if after.After(w.now) {
			break
		}
		next = after
	}
	return next, true
}

// lastScheduled is the firing the last scheduled job served, else the
// cluster's creation: a new cluster waits for its schedule's first firing.
func lastScheduled(w world) time.Time {
	var last time.Time
	if ts := w.cluster.Metadata.CreationTimestamp; ts != nil {
		last = *ts
	}
	for _, j := range w.jobs {
		if j.Trigger == spec.BackupScheduled && j.ScheduledFor.After(last) {
			last = j.ScheduledFor
		}
	}
	return last
}

// surplusJobs are the finished jobs beyond the history kept, oldest first.
func surplusJobs(jobs []*store.BackupJob) []*store.BackupJob {
	var finished []*store.BackupJob
	for _, j := range jobs {
		if j.Finished() {
			finished = append(finished, j)
		}
	}
	if len(finished) <= store.MaxBackupJobsPerCluster {
		return nil
	}
	return finished[:len(finished)-store.MaxBackupJobsPerCluster]
}

// expired are the backups retention deletes, from ms (oldest first): all
// but the newest keep, and those older than maxAge (when set) except the
// newest, which is never deleted by age alone.
func expired(ms []backup.Manifest, keep int, maxAge time.Duration, now time.Time) []backup.Manifest {
	var out []backup.Manifest
	for i, m := range ms {
		newer := len(ms) - 1 - i
		tooOld := maxAge > 0 && now.Sub(m.FinishedAt) > maxAge && newer > 0
		if newer >= keep || tooOld {
			out = append(out, m)
		}
	}
	return out
}

func retentionOf(c *spec.MySQLCluster) (int, time.Duration) {
	keep, maxAge := int(spec.DefaultBackupKeep), time.Duration(0)
	if b := c.Spec.Backup; b != nil {
		if b.Retention.Keep != nil {
			keep = int(*b.Retention.Keep)
		}
		maxAge, _ = b.Retention.MaxAge.Value()
	}
	return keep, maxAge
}

// backupStatusOf is status.backup as the jobs tell it.
func backupStatusOf(w world) *spec.BackupStatus {
	c := w.cluster
	if c.Spec.Backup == nil && len(w.jobs) == 0 && w.archiver == nil {
		return nil
	}
	st := &spec.BackupStatus{Archiver: archiverStatusOf(w)}
	for _, j := range w.jobs {
		switch {
		case !j.Finished() && st.Running == nil:
			st.Running = recordOf(j)
		case j.Phase == store.BackupSucceeded:
			st.Last = recordOf(j)
		case j.Phase == store.BackupFailed:
			st.LastFailure = recordOf(j)
		}
	}
	if c.Spec.Backup != nil && c.Spec.Backup.Schedule != "" {
		if next, ok := spec.NextBackup(c.Spec.Backup.Schedule, lastScheduled(w)); ok {
			if next.Before(w.now) {
				next = w.now
			}
			next = next.UTC()
			st.NextScheduled = &next
		}
	}
	return st
}

func recordOf(j *store.BackupJob) *spec.BackupRecord {
	r := &spec.BackupRecord{ID: j.ID, Trigger: j.Trigger, Instance: j.Instance, Size: j.Size,
		GTIDPosition: j.GTIDPosition, Message: j.Message}
	if !j.StartedAt.IsZero() {
		r.StartedAt = ptrTime(j.StartedAt)
	} else if !j.LaunchedAt.IsZero() {
		r.StartedAt = ptrTime(j.LaunchedAt)
	}
	if !j.FinishedAt.IsZero() {
		r.FinishedAt = ptrTime(j.FinishedAt)
		if r.StartedAt != nil {
			r.Duration = j.FinishedAt.Sub(*r.StartedAt).Round(time.Millisecond).String()
		}
	}
	return r
}

func ptrTime(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// performBackup carries out a backup action and records its event.
func (r *ClusterReconciler) performBackup(ctx context.Context, c *spec.MySQLCluster, a action) error {
	switch a.kind {
	case actScheduleBackup:
		if err := r.Store.PutBackupJob(ctx, a.job); err != nil {
			return err
		}
		r.backupEvent(ctx, c, a.job, spec.EventNormal, "BackupRequested", a.why)
		return nil
	case actAssignBackup:
		if err := r.Store.PutBackupJob(ctx, a.job); err != nil {
			return err
		}
		r.revive(ctx)
		return nil
	case actFailBackup:
		return r.failBackup(ctx, c, a.job)
	case actFinishBackup:
		return r.finishBackup(ctx, c, a.job)
	case actReconcileBackup:
		r.mark(&r.asked, a.job.TaskID)
		return r.Mesos.ReconcileTasks(ctx, []framework.TaskRef{{ID: a.job.TaskID, AgentID: a.job.AgentID}})
	case actTrimBackupJobs:
		return r.Store.DeleteBackupJob(ctx, a.job)
	}
	return fmt.Errorf("not a backup action: %s", a.kind)
}

// finishBackup records a finished task's backup from its manifest (a task
// that finished without one failed), then applies retention.
func (r *ClusterReconciler) finishBackup(ctx context.Context, c *spec.MySQLCluster, j *store.BackupJob) error {
	next := *j
	next.FinishedAt = r.now()
	m, err := r.readManifest(ctx, j)
	if errors.Is(err, backup.ErrNotFound) {
		next.Phase, next.Message = store.BackupFailed, fmt.Sprintf("the task finished, but left no backup: %v", err)
		return r.failBackup(ctx, c, &next)
	}
	if err != nil {
		// The destination does not answer: the backup may well be there;
		// the pass is retried (with backoff) until it can tell.
		return fmt.Errorf("read back backup %s: %w", j.ID, err)
	}
	next.Phase, next.Message = store.BackupSucceeded, ""
	next.StartedAt, next.FinishedAt, next.Size, next.GTIDPosition = m.StartedAt, m.FinishedAt, m.Size, m.GTIDPosition
	if err := r.Store.PutBackupJob(ctx, &next); err != nil {
		return err
	}
	r.BackupMetrics.Finished(j.Namespace, j.Cluster, metrics.ResultSucceeded)
	r.backupEvent(ctx, c, &next, spec.EventNormal, "BackupSucceeded", fmt.Sprintf("backup %s of %s: %d bytes in %s, at GTID position %s, in %s",
		m.ID, m.Instance, m.Size, m.Duration().Round(time.Millisecond), m.GTIDPosition, j.Destination))
	r.applyRetention(ctx, c, j.Destination)
	return nil
}

// failBackup records a failed job: its status, an event, the metric. A
// task that may still run is killed first.
func (r *ClusterReconciler) failBackup(ctx context.Context, c *spec.MySQLCluster, j *store.BackupJob) error {
	if t, known := r.Mesos.Task(j.TaskID); j.TaskID != "" && (!known || !t.Terminal()) {
		r.mark(&r.killed, j.TaskID)
		if err := r.Mesos.Kill(ctx, j.TaskID, j.AgentID); err != nil {
			return err
		}
	}
	if err := r.Store.PutBackupJob(ctx, j); err != nil {
		return err
	}
	r.BackupMetrics.Finished(j.Namespace, j.Cluster, metrics.ResultFailed)
	r.backupEvent(ctx, c, j, spec.EventWarning, "BackupFailed", j.Message)
	return nil
}

// setBackupGauges shows the last successful backup, as the stored jobs
// tell it, so the gauges survive a scheduler restart.
func (r *ClusterReconciler) setBackupGauges(w world) {
	for _, j := range slices.Backward(w.jobs) {
		if j.Phase == store.BackupSucceeded {
			r.BackupMetrics.Last(j.Namespace, j.Cluster, j.FinishedAt, j.FinishedAt.Sub(j.StartedAt), j.Size)
			return
		}
	}
}

func (r *ClusterReconciler) readManifest(ctx context.Context, j *store.BackupJob) (backup.Manifest, error) {
	t, err := r.Backups.Open(j.Destination)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer t.Close()
	return backup.ReadManifest(ctx, t, j.Namespace, j.Cluster, j.ID)
}

// applyRetention deletes the backups retention no longer keeps, then the
// archived binary logs that no kept backup needs. A failure is logged and
// retried after the next backup: nothing depends on it.
func (r *ClusterReconciler) applyRetention(ctx context.Context, c *spec.MySQLCluster, destination string) {
	t, err := r.Backups.Open(destination)
	if err == nil {
		defer t.Close()
		err = r.retain(ctx, c, t)
	}
	if err != nil {
		r.logger().Warn("backup retention failed; retrying after the next backup", "cluster", c.Key(), "err", err)
	}
}

// retain applies the cluster's retention to its own backups: those of an
// earlier incarnation under the same name (deleted and created again) are
// another history, kept until deleted by hand.
func (r *ClusterReconciler) retain(ctx context.Context, c *spec.MySQLCluster, t backup.Target) error {
	meta := c.Metadata
	all, err := backup.List(ctx, t, meta.Namespace, meta.Name)
	if err != nil {
		return err
	}
	ms := slices.DeleteFunc(all, func(m backup.Manifest) bool { return m.ClusterUID != meta.UID })
	keep, maxAge := retentionOf(c)
	gone := expired(ms, keep, maxAge, r.now())
	for _, m := range gone {
		if err := backup.Delete(ctx, t, meta.Namespace, meta.Name, m.ID); err != nil {
			return err
		}
		r.backupEvent(ctx, c, &store.BackupJob{ID: m.ID}, spec.EventNormal, "BackupDeleted",
			fmt.Sprintf("backup %s (taken %s) is beyond retention (keep %d, max age %v)", m.ID, m.FinishedAt.Format(time.RFC3339), keep, maxAge))
	}
	if len(gone) == len(ms) {
		return nil
	}
	oldest := ms[len(gone)]
	from, err := mysql.ParseGTIDSet(oldest.Flavor, oldest.GTIDPosition)
	if err != nil {
		return fmt.Errorf("backup %s: %w", oldest.ID, err)
	}
	pruned, err := backup.Prune(ctx, t, meta.Namespace, meta.Name, meta.UID, from)
	if len(pruned) > 0 {
		r.logger().Info("archived binary logs pruned", "cluster", c.Key(), "segments", len(pruned), "before", oldest.GTIDPosition)
	}
	return err
}

func (r *ClusterReconciler) backupEvent(ctx context.Context, c *spec.MySQLCluster, j *store.BackupJob, typ, reason, msg string) {
	ev := spec.Event{Time: r.now(), Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, Type: typ,
		Reason: reason, Instance: j.Instance, Operation: j.ID, Message: msg}
	if err := r.Store.RecordEvent(ctx, ev); err != nil {
		r.logger().Warn("cannot record an event", "cluster", c.Key(), "reason", reason, "err", err)
	}
}

func (r *ClusterReconciler) revive(ctx context.Context) {
	if err := r.Mesos.Revive(ctx); err != nil && !errors.Is(err, framework.ErrNotSubscribed) {
		r.logger().Warn("revive failed", "err", err)
	}
}
