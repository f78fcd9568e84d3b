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
		i := b.jobOffer(j)
		if i < 0 {
			b.jobsWaiting = true
			continue
		}
		if !b.launchJob(ctx, j, b.offers[i]) {
			b.jobsWaiting = true
		}
	}
}

// jobOffer is the offer a job runs on, -1 if none has room.
func (b *batch) jobOffer(j *store.BackupJob) int {
	cpus, mem := b.l.jobResources()
	best := -1
	for i, o := range b.offers {
		v := b.views[i]
		if o.Role != j.Role || v.CPUs < cpus+b.l.Executor.CPUs-1e-9 || v.MemMiB < mem+b.l.Executor.MemMiB-1e-9 {
			continue
		}
		if o.Mesos.AgentID.Value == j.AgentID {
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
	cpus, mem := b.l.jobResources()
	for i := range b.offers {
		if b.offers[i].Mesos.ID.Value == o.Mesos.ID.Value {
			b.views[i].Take(cpus+b.l.Executor.CPUs, mem+b.l.Executor.MemMiB, 0, 0)
		}
	}
	b.touched[j.ClusterKey()] = true
	fwID := ""
	if b.l.FrameworkID != nil {
		fwID = b.l.FrameworkID()
	}
	job := offers.Job{
		Role: j.Role, CPUs: cpus, MemMiB: mem, ExecutorCPUs: b.l.Executor.CPUs, ExecutorMemMiB: b.l.Executor.MemMiB,
		FrameworkID: fwID, AgentID: next.AgentID, TaskID: next.TaskID, TaskName: j.Cluster + "-backup-" + j.ID,
		Command: b.l.Executor.command(), Data: data,
		Labels: map[string]string{"mysos.io/cluster": j.ClusterKey(), "mysos.io/backup": j.ID},
	}
	b.l.log().Info("launching a backup", "cluster", j.ClusterKey(), "backup", j.ID, "task", next.TaskID,
		"agent", next.AgentID, "source", j.Instance, "destination", j.Destination)
	b.accept[o.Mesos.ID.Value] = append(b.accept[o.Mesos.ID.Value], job.Operations()...)
	return true
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
	d := taskspec.Data{Workload: taskspec.WorkloadBackup, Backup: &taskspec.Backup{
		BackupRef: taskspec.BackupRef{
			Target:    taskspec.Target{URL: j.Destination, HadoopUser: l.Backups.HadoopUser},
			Namespace: j.Namespace, Cluster: j.Cluster, ID: j.ID,
		},
		ClusterUID: j.ClusterUID, Instance: j.Instance, Flavor: c.Spec.Flavor,
		Source: taskspec.Donor{Host: j.SourceHost, Port: j.SourcePort},
		User:   AdminUser, Password: pw[AdminUser],
	}}
	return d.Marshal()
}
