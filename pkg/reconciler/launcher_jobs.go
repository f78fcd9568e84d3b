package reconciler

import (
	"context"
	"errors"

	"github.com/mysos-project/mysos/pkg/offers"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

func (l *Launcher) listJobs(ctx context.Context) ([]*store.BackupJob, error) {
	if l.Jobs == nil {
		return nil, nil
	}
	return l.Jobs.ListBackupJobs(ctx, "", "")
}

// launchJobs launches backup jobs that have their source: on the source's
// agent when it has room (the dump then crosses no network), else on any
// offer of the job's role. Like a launch of an instance, the job is
// recorded as Launched before the ACCEPT goes out.
func (b *batch) launchJobs(ctx context.Context) {
	jobs, err := b.l.listJobs(ctx)
	if err != nil {
		b.l.log().Warn("cannot read backup jobs; not launching any", "err", err)
		return
	}
	for _, j := range jobs {
		if j.Phase != store.BackupPending || j.Instance == "" {
			continue
		}
		i := b.offerFor(j.Role, j.AgentID)
		if i < 0 || !b.launchJob(ctx, j, b.offers[i]) {
			b.jobsWaiting = true
		}
	}
}

// offerFor is the offer a job of role runs on, -1 if none has room: one
// on agent (its source's) when it can, else the first with room.
func (b *batch) offerFor(role, agent string) int {
	cpus, mem := b.l.jobResources()
	best := -1
	for i, o := range b.offers {
		v := b.views[i]
		if o.Role != role || v.CPUs < cpus+b.l.Executor.CPUs-1e-9 || v.MemMiB < mem+b.l.Executor.MemMiB-1e-9 {
			continue
		}
		if o.Mesos.AgentID.Value == agent {
			return i
		}
		if best < 0 {
			best = i
		}
	}
	return best
}

func (b *batch) launchJob(ctx context.Context, j *store.BackupJob, o offers.Offer) bool {
	next := *j
	next.Phase, next.TaskID, next.AgentID, next.LaunchedAt = store.BackupLaunched, backupTaskID(j), o.Mesos.AgentID.Value, b.l.now()
	data, err := b.l.backupData(ctx, &next)
	if err != nil {
		b.l.log().Warn("cannot describe the backup task; not launching", "cluster", j.ClusterKey(), "backup", j.ID, "err", err)
		return false
	}
	if err := b.l.Jobs.PutBackupJob(ctx, &next); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			b.l.log().Warn("cannot record a backup launch; not launching", "cluster", j.ClusterKey(), "backup", j.ID, "err", err)
		}
		return false
	}
	b.touched[j.ClusterKey()] = true
	b.l.log().Info("launching a backup", "cluster", j.ClusterKey(), "backup", j.ID, "task", next.TaskID,
		"agent", next.AgentID, "source", j.Instance, "destination", j.Destination)
	b.acceptJob(o, j.Role, next.TaskID, j.Cluster+"-backup-"+j.ID, data,
		map[string]string{"mysos.io/cluster": j.ClusterKey(), "mysos.io/backup": j.ID})
	return true
}

// acceptJob takes a job's resources from offer o's view and queues its
// LAUNCH.
func (b *batch) acceptJob(o offers.Offer, role, taskID, name string, data []byte, labels map[string]string) {
	cpus, mem := b.l.jobResources()
	for i := range b.offers {
		if b.offers[i].Mesos.ID.Value == o.Mesos.ID.Value {
			b.views[i].Take(cpus+b.l.Executor.CPUs, mem+b.l.Executor.MemMiB, 0, 0)
		}
	}
	fwID := ""
	if b.l.FrameworkID != nil {
		fwID = b.l.FrameworkID()
	}
	job := offers.Job{
		Role: role, CPUs: cpus, MemMiB: mem, ExecutorCPUs: b.l.Executor.CPUs, ExecutorMemMiB: b.l.Executor.MemMiB,
		FrameworkID: fwID, AgentID: o.Mesos.AgentID.Value, TaskID: taskID, TaskName: name,
		Command: b.l.Executor.command(), Data: data, Labels: labels,
	}
	b.accept[o.Mesos.ID.Value] = append(b.accept[o.Mesos.ID.Value], job.Operations()...)
}

func (l *Launcher) jobResources() (cpus, mem float64) {
	return orDefaultF(l.Backups.CPUs, DefaultBackupCPUs), orDefaultF(l.Backups.MemMiB, DefaultBackupMemMiB)
}

func orDefaultF(v, def float64) float64 {
	if v > 0 {
		return v
	}
	return def
}

// backupData is the backup task's data: the member to copy, Mysos' admin
// account to log in with, and where the backup goes.
func (l *Launcher) backupData(ctx context.Context, j *store.BackupJob) ([]byte, error) {
	c, err := l.clusterOf(ctx, j.Namespace, j.Cluster, j.ClusterUID)
	if err != nil {
		return nil, err
	}
	pw, err := l.Passwords.EnsurePasswords(ctx, j.Namespace, j.Cluster, j.ClusterUID, AdminUser)
	if err != nil {
		return nil, err
	}
	ca, err := l.memberCA(ctx, j.Namespace, j.Cluster, j.ClusterUID, j.SourceHost, j.SourcePort)
	if err != nil {
		return nil, err
	}
	d := taskspec.Data{Workload: taskspec.WorkloadBackup, Backup: &taskspec.Backup{
		BackupRef: taskspec.BackupRef{
			Target:    taskspec.Target{URL: j.Destination, HadoopUser: l.Backups.HadoopUser},
			Namespace: j.Namespace, Cluster: j.Cluster, ID: j.ID,
		},
		ClusterUID: j.ClusterUID, Instance: j.Instance, Flavor: c.Spec.Flavor,
		Source: taskspec.Donor{Host: j.SourceHost, Port: j.SourcePort, CA: ca},
		User:   AdminUser, Password: pw[AdminUser],
	}}
	return d.Marshal()
}

// ArchiverRecords are the archiver records the launcher launches.
type ArchiverRecords interface {
	ListArchivers(ctx context.Context) ([]*store.Archiver, error)
	PutArchiver(ctx context.Context, a *store.Archiver) error
}

// launchArchivers launches Pending archivers, as jobs are launched: on
// unreserved resources, beside their source when its agent has room.
func (b *batch) launchArchivers(ctx context.Context) {
	if b.l.Archivers == nil {
		return
	}
	recs, err := b.l.Archivers.ListArchivers(ctx)
	if err != nil {
		b.l.log().Warn("cannot read archivers; not launching any", "err", err)
		return
	}
	for _, a := range recs {
		if a.Phase != store.InstancePending {
			continue
		}
		if b.l.now().Before(a.NotBefore) {
			b.jobsWaiting = true // offers are wanted once the backoff ends
			continue
		}
		i := b.offerFor(a.Role, a.AgentID)
		if i < 0 || !b.launchArchiver(ctx, a, b.offers[i]) {
			b.jobsWaiting = true
		}
	}
}

func (b *batch) launchArchiver(ctx context.Context, a *store.Archiver, o offers.Offer) bool {
	next := *a
	next.Phase, next.Launches, next.Since, next.AgentID = store.InstanceLaunched, a.Launches+1, b.l.now(), o.Mesos.AgentID.Value
	next.TaskID = archiverTaskID(&next)
	data, err := b.l.archiverData(ctx, &next)
	if err != nil {
		b.l.log().Warn("cannot describe the archiver's task; not launching", "cluster", a.ClusterKey(), "err", err)
		return false
	}
	if err := b.l.Archivers.PutArchiver(ctx, &next); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			b.l.log().Warn("cannot record an archiver launch; not launching", "cluster", a.ClusterKey(), "err", err)
		}
		return false
	}
	b.touched[a.ClusterKey()] = true
	b.l.log().Info("launching the binlog archiver", "cluster", a.ClusterKey(), "task", next.TaskID,
		"agent", o.Mesos.AgentID.Value, "source", a.Instance, "destination", a.Destination)
	b.acceptJob(o, next.Role, next.TaskID, a.Cluster+"-binlog-archiver", data,
		map[string]string{"mysos.io/cluster": a.ClusterKey(), "mysos.io/archiver": a.Instance})
	return true
}

// archiverData is the archiver task's data: the member to stream from,
// the replication account, and where the archive goes.
func (l *Launcher) archiverData(ctx context.Context, a *store.Archiver) ([]byte, error) {
	c, err := l.clusterOf(ctx, a.Namespace, a.Cluster, a.ClusterUID)
	if err != nil {
		return nil, err
	}
	pw, err := l.Passwords.EnsurePasswords(ctx, a.Namespace, a.Cluster, a.ClusterUID, ReplicationUser)
	if err != nil {
		return nil, err
	}
	ca, err := l.memberCA(ctx, a.Namespace, a.Cluster, a.ClusterUID, a.SourceHost, a.SourcePort)
	if err != nil {
		return nil, err
	}
	d := taskspec.Data{Workload: taskspec.WorkloadArchiver, Archiver: &taskspec.Archiver{
		Target:    taskspec.Target{URL: a.Destination, HadoopUser: l.Backups.HadoopUser},
		Namespace: a.Namespace, Cluster: a.Cluster, ClusterUID: a.ClusterUID, Flavor: c.Spec.Flavor,
		Instance: a.Instance, Source: taskspec.Donor{Host: a.SourceHost, Port: a.SourcePort, CA: ca},
		User: ReplicationUser, Password: pw[ReplicationUser], ServerID: ArchiverServerID,
		SegmentSeconds: int(orDefaultF(l.Backups.SegmentSeconds, DefaultSegmentSeconds)),
	}}
	return d.Marshal()
}
