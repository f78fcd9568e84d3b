package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Archiver is the durable record of a cluster's binlog archiver: the one
// long-running task that streams the binary log of a member (a replica
// when there is one) to the backup destination. Like an instance record
// it is written before the task is launched.
type Archiver struct {
	Namespace  string `json:"namespace"`
	Cluster    string `json:"cluster"`
	ClusterUID string `json:"clusterUID"`
	// Phase is Pending (waits for an offer) or Launched (TaskID runs it).
	Phase       InstancePhase `json:"phase"`
	Role        string        `json:"role"`
	Destination string        `json:"destination"`
	// Instance is the member streamed from, at SourceHost:SourcePort on
	// AgentID (where the task goes when the agent has room).
	Instance   string `json:"instance"`
	AgentID    string `json:"agentID,omitempty"`
	SourceHost string `json:"sourceHost"`
	SourcePort int    `json:"sourcePort"`
	TaskID     string `json:"taskID,omitempty"`
	// Launches counts tasks; QuickFailures and NotBefore back a crash
	// loop off as for instances.
	Launches      int       `json:"launches,omitempty"`
	QuickFailures int       `json:"quickFailures,omitempty"`
	NotBefore     time.Time `json:"notBefore,omitzero"`
	Since         time.Time `json:"since"`
	Message       string    `json:"message,omitempty"`

	ModRevision int64 `json:"-"`
}

// ClusterKey is "namespace/name".
func (a *Archiver) ClusterKey() string { return a.Namespace + "/" + a.Cluster }

func (s *Store) archiverKey(ns, name string) string {
	return s.prefix + "/archivers/" + ns + "/" + name
}

// PutArchiver writes a if nobody changed it since it was read.
func (s *Store) PutArchiver(ctx context.Context, a *Archiver) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode the archiver of %s: %w", a.ClusterKey(), err)
	}
	rev, err := s.casPut(ctx, s.archiverKey(a.Namespace, a.Cluster), string(raw), a.ModRevision)
	if err != nil {
		return fmt.Errorf("write the archiver of %s: %w", a.ClusterKey(), err)
	}
	a.ModRevision = rev
	return nil
}

// DeleteArchiver removes a's record if nobody changed it since it was read.
func (s *Store) DeleteArchiver(ctx context.Context, a *Archiver) error {
	if err := s.casDelete(ctx, s.archiverKey(a.Namespace, a.Cluster), a.ModRevision); err != nil {
		return fmt.Errorf("delete the archiver of %s: %w", a.ClusterKey(), err)
	}
	return nil
}

// GetArchiver returns a cluster's archiver record, nil if it has none; an
// empty namespace is refused.
func (s *Store) GetArchiver(ctx context.Context, ns, name string) (*Archiver, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.archiverKey(ns, name))
	if err != nil {
		return nil, fmt.Errorf("read the archiver of %s/%s: %w", ns, name, err)
	}
	return decodeArchiver(ns, name, resp.Kvs)
}

// decodeArchiver decodes a cluster's archiver record, nil if kvs is empty.
func decodeArchiver(ns, name string, kvs []*mvccpb.KeyValue) (*Archiver, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	var a Archiver
	if err := json.Unmarshal(kvs[0].Value, &a); err != nil {
		return nil, fmt.Errorf("decode the archiver of %s/%s: %w", ns, name, err)
	}
	a.ModRevision = kvs[0].ModRevision
	return &a, nil
}

// ListArchivers returns every cluster's archiver record.
func (s *Store) ListArchivers(ctx context.Context) ([]*Archiver, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"/archivers/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list archivers: %w", err)
	}
	out := make([]*Archiver, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a Archiver
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return nil, fmt.Errorf("decode archiver %s: %w", kv.Key, err)
		}
		a.ModRevision = kv.ModRevision
		out = append(out, &a)
	}
	return out, nil
}

// casPut writes key if its mod revision is still rev (0: it must not
// exist) and returns the new revision; ErrConflict otherwise.
func (s *Store) casPut(ctx context.Context, key, value string, rev int64) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, value)).
		Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("changed since revision %d: %w", rev, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// casDelete deletes key if its mod revision is still rev.
func (s *Store) casDelete(ctx context.Context, key string, rev int64) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("changed since revision %d: %w", rev, ErrConflict)
	}
	return nil
}
