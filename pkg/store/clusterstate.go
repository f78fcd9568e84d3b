package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// ClusterState is everything a reconcile pass reads of one cluster: spec
// and status, instance records, backup jobs and the archiver record, read
// in one request at one revision. A pass used to make a request for each
// (and another to write the status): see docs/benchmarks.md.
type ClusterState struct {
	Cluster    *spec.MySQLCluster
	Instances  []*Instance
	BackupJobs []*BackupJob
	Archiver   *Archiver // nil when the cluster has none

	// What UpdateStatusFrom needs to write the status without reading it
	// again: the keys as read (decoded afresh, so that changes the caller
	// made to Cluster do not hide a difference) and their revisions.
	specRaw, statusRaw []byte
	specRev, createRev int64
	statusRev          int64
}

// ReadCluster reads a cluster's state in one transaction; ErrNotFound when
// the cluster's spec is gone.
func (s *Store) ReadCluster(ctx context.Context, ns, name string) (*ClusterState, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.specKey(ns, name)),
		clientv3.OpGet(s.statusKey(ns, name)),
		clientv3.OpGet(s.instancePrefix(ns, name), clientv3.WithPrefix()),
		clientv3.OpGet(s.backupPrefix(ns, name), clientv3.WithPrefix()),
		clientv3.OpGet(s.archiverKey(ns, name)),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", ns, name, err)
	}
	specKVs := resp.Responses[0].GetResponseRange().Kvs
	if len(specKVs) == 0 {
		return nil, fmt.Errorf("cluster %s/%s: %w", ns, name, ErrNotFound)
	}
	st := &ClusterState{specRaw: specKVs[0].Value, specRev: specKVs[0].ModRevision, createRev: specKVs[0].CreateRevision}
	if statusKVs := resp.Responses[1].GetResponseRange().Kvs; len(statusKVs) > 0 {
		st.statusRaw, st.statusRev = statusKVs[0].Value, statusKVs[0].ModRevision
	}
	snap, err := st.snapshot()
	if err != nil {
		return nil, err
	}
	st.Cluster = snap.obj
	if st.Instances, err = s.decodeInstances(resp.Responses[2].GetResponseRange().Kvs); err != nil {
		return nil, err
	}
	if st.BackupJobs, err = s.decodeBackupJobs(resp.Responses[3].GetResponseRange().Kvs); err != nil {
		return nil, err
	}
	if st.Archiver, err = decodeArchiver(ns, name, resp.Responses[4].GetResponseRange().Kvs); err != nil {
		return nil, err
	}
	return st, nil
}

// snapshot decodes the spec and status keys as they were read.
func (st *ClusterState) snapshot() (*snapshot, error) {
	obj, err := decodeSpec(st.specRaw, st.specRev)
	if err != nil {
		return nil, err
	}
	if st.statusRaw != nil {
		attachStatus(obj, st.statusRaw)
	}
	return &snapshot{obj: obj, specRev: st.specRev, createRev: st.createRev, statusRev: st.statusRev}, nil
}

// UpdateStatusFrom is UpdateStatus starting from the status st read: no
// request at all when mutate changes nothing, one write when it does and
// nobody wrote the status since; otherwise it reads again and retries as
// UpdateStatus does.
func (s *Store) UpdateStatusFrom(ctx context.Context, st *ClusterState, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error) {
	if st.specRaw == nil { // not from ReadCluster
		m := st.Cluster.Metadata
		return s.UpdateStatus(ctx, m.Namespace, m.Name, m.UID, mutate)
	}
	snap, err := st.snapshot()
	if err != nil {
		return nil, err
	}
	uid := snap.obj.Metadata.UID
	if obj, done, err := s.tryUpdateStatus(ctx, snap, uid, mutate); done || err != nil {
		return obj, err
	}
	return s.UpdateStatus(ctx, snap.obj.Metadata.Namespace, snap.obj.Metadata.Name, uid, mutate)
}
