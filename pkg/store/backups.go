package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/spec"
)

// BackupPhase is where a backup job stands; see docs/backup.md.
type BackupPhase string

// Backup job phases.
const (
	// BackupPending waits for a source member and an offer.
	BackupPending BackupPhase = "Pending"
	// BackupLaunched has a task (TaskID), running or on its way.
	BackupLaunched BackupPhase = "Launched"
	// BackupSucceeded and BackupFailed are final.
	BackupSucceeded BackupPhase = "Succeeded"
	BackupFailed    BackupPhase = "Failed"
)

// MaxBackupJobsPerCluster bounds the finished jobs kept per cluster; the
// backups themselves are listed from their target.
const MaxBackupJobsPerCluster = 20

// BackupJob is the durable record of one backup being taken: requested by a
// user or the schedule, given a source member, launched as a Mesos task,
// finished. Like an instance record it is written before the task is
// launched, so a scheduler that dies at any point finds the task again.
type BackupJob struct {
	Namespace  string `json:"namespace"`
	Cluster    string `json:"cluster"`
	ClusterUID string `json:"clusterUID"`
	ID         string `json:"id"`
	Trigger    string `json:"trigger"`
	// ScheduledFor is the schedule's firing time a scheduled job serves.
	ScheduledFor time.Time   `json:"scheduledFor,omitzero"`
	Phase        BackupPhase `json:"phase"`
	// Role is the Mesos role whose resources the task runs on.
	Role string `json:"role"`
	// Destination is the target URL the backup goes to.
	Destination string    `json:"destination"`
	RequestedAt time.Time `json:"requestedAt"`
	// Instance is the member copied; AgentID its agent (where the task is
	// placed when the agent has room, so the dump crosses no network), and
	// SourceHost:SourcePort its mysqld.
	Instance   string `json:"instance,omitempty"`
	AgentID    string `json:"agentID,omitempty"`
	SourceHost string `json:"sourceHost,omitempty"`
	SourcePort int    `json:"sourcePort,omitempty"`
	// TaskID is the task taking the backup, once launched.
	TaskID     string    `json:"taskID,omitempty"`
	LaunchedAt time.Time `json:"launchedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Message    string    `json:"message,omitempty"`
	// Of a succeeded job, from its manifest: when the copy started, its
	// stored size and its GTID position.
	StartedAt    time.Time `json:"startedAt,omitzero"`
	Size         int64     `json:"size,omitempty"`
	GTIDPosition string    `json:"gtidPosition,omitempty"`

	ModRevision int64 `json:"-"`
}

// NewBackupJob is the record of a backup of c just requested; its id is
// the request time (see backup.NewID).
func NewBackupJob(c *spec.MySQLCluster, trigger string, now time.Time, destination string) *BackupJob {
	return &BackupJob{
		Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, ClusterUID: c.Metadata.UID,
		ID: backup.NewID(now), Trigger: trigger, Phase: BackupPending, Role: c.Spec.Placement.Role,
		Destination: destination, RequestedAt: now,
	}
}

// Finished reports whether the job reached a final phase.
func (j *BackupJob) Finished() bool {
	return j.Phase == BackupSucceeded || j.Phase == BackupFailed
}

// ClusterKey is "namespace/name".
func (j *BackupJob) ClusterKey() string { return j.Namespace + "/" + j.Cluster }

func (s *Store) backupPrefix(ns, name string) string {
	if ns == "" {
		return s.prefix + "/backups/"
	}
	return s.prefix + "/backups/" + ns + "/" + name + "/"
}

// PutBackupJob writes j if nobody changed it since it was read (a job with
// ModRevision 0 must not exist yet), and updates j.ModRevision.
func (s *Store) PutBackupJob(ctx context.Context, j *BackupJob) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode backup job %s/%s: %w", j.ClusterKey(), j.ID, err)
	}
	rev, err := s.casPut(ctx, s.backupPrefix(j.Namespace, j.Cluster)+j.ID, string(raw), j.ModRevision)
	if err != nil {
		return fmt.Errorf("write backup job %s/%s: %w", j.ClusterKey(), j.ID, err)
	}
	j.ModRevision = rev
	return nil
}

// DeleteBackupJob removes j's record if nobody changed it since it was read.
func (s *Store) DeleteBackupJob(ctx context.Context, j *BackupJob) error {
	if err := s.casDelete(ctx, s.backupPrefix(j.Namespace, j.Cluster)+j.ID, j.ModRevision); err != nil {
		return fmt.Errorf("delete backup job %s/%s: %w", j.ClusterKey(), j.ID, err)
	}
	return nil
}

// ListBackupJobs returns one cluster's backup jobs, oldest first; an empty
// namespace lists every cluster's.
func (s *Store) ListBackupJobs(ctx context.Context, ns, name string) ([]*BackupJob, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.backupPrefix(ns, name), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list backup jobs: %w", err)
	}
	return s.decodeBackupJobs(resp.Kvs)
}

// decodeBackupJobs decodes backup job records, oldest first per cluster.
func (s *Store) decodeBackupJobs(kvs []*mvccpb.KeyValue) ([]*BackupJob, error) {
	out := make([]*BackupJob, 0, len(kvs))
	for _, kv := range kvs {
		var j BackupJob
		if err := json.Unmarshal(kv.Value, &j); err != nil {
			return nil, fmt.Errorf("decode backup job %s: %w", strings.TrimPrefix(string(kv.Key), s.prefix), err)
		}
		j.ModRevision = kv.ModRevision
		out = append(out, &j)
	}
	slices.SortFunc(out, func(a, b *BackupJob) int {
		if c := strings.Compare(a.ClusterKey(), b.ClusterKey()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
