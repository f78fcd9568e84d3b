package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// InstancePhase is where an instance stands in its life; see
// docs/reconciler.md for the transitions.
type InstancePhase string

// Instance phases.
const (
	// InstancePending waits for an offer: first launch, or relaunch after
	// its task ended (then pinned to AgentID, where its volume lives).
	InstancePending InstancePhase = "Pending"
	// InstanceLaunched has a task (TaskID), running or on its way.
	InstanceLaunched InstancePhase = "Launched"
	// InstanceReleasing is surplus or its cluster is being deleted: its task
	// is killed, then its volume destroyed and its reservation released.
	InstanceReleasing InstancePhase = "Releasing"
)

// Instance is the durable record of one instance of a cluster: where it
// lives (agent, persistent volume, port) and which task runs it. It is
// written before any Mesos operation that depends on it, so a scheduler that
// dies at any point finds every reservation and task it made accounted for.
type Instance struct {
	Namespace  string        `json:"namespace"`
	Cluster    string        `json:"cluster"`
	ClusterUID string        `json:"clusterUID"`
	Ordinal    int           `json:"ordinal"`
	Phase      InstancePhase `json:"phase"`
	// Request is what the instance needs and where it may go.
	Request InstanceRequest `json:"request"`
	// AgentID, Hostname, PersistenceID and Port are fixed at the first
	// launch and kept across relaunches; a move to another agent clears them.
	AgentID  string `json:"agentID,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	// Domain is the agent's failure domain under the request's spread key
	// (placement.Domain), so that new instances spread around this one.
	Domain        string `json:"domain,omitempty"`
	PersistenceID string `json:"persistenceID,omitempty"`
	Port          uint64 `json:"port,omitempty"`
	// TaskID is the current or last task.
	TaskID string `json:"taskID,omitempty"`
	// TLS: the task was launched with TLS (spec.tls.enabled then): its
	// mysqld serves a certificate Mysos issued, and Mysos connects to it
	// over TLS only. A spec change reaches an instance at its next launch.
	TLS bool `json:"tls,omitempty"`
	// Launches counts tasks launched for this instance.
	Launches int `json:"launches,omitempty"`
	// QuickFailures counts consecutive tasks that ended soon after their
	// launch; NotBefore holds the next launch back while they crash-loop.
	QuickFailures int       `json:"quickFailures,omitempty"`
	NotBefore     time.Time `json:"notBefore,omitzero"`
	// Since is when the instance entered its phase.
	Since time.Time `json:"since"`
	// Errant says why the instance's data is not trusted: it holds
	// transactions the primary lacks (a former primary's unacknowledged
	// writes). It never serves or gets promoted until it is re-seeded,
	// which gives the ordinal a fresh record.
	Errant string `json:"errant,omitempty"`

	// ModRevision is the etcd revision the record was read at, for
	// compare-and-swap; 0 for a record not yet stored.
	ModRevision int64 `json:"-"`
}

// InstanceRequest is the resources and placement rules of an instance,
// copied from the spec when the instance is created or scaled.
type InstanceRequest struct {
	CPUs         float64           `json:"cpus"`
	MemMiB       float64           `json:"memMiB"`
	DiskMiB      float64           `json:"diskMiB"`
	Role         string            `json:"role"`
	SpreadKey    string            `json:"spreadKey,omitempty"`
	MaxPerDomain int               `json:"maxPerDomain,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
}

// Key is "namespace/name/ordinal", the instance's identity in labels.
func (i *Instance) Key() string {
	return i.Namespace + "/" + i.Cluster + "/" + strconv.Itoa(i.Ordinal)
}

// ClusterKey is "namespace/name".
func (i *Instance) ClusterKey() string { return i.Namespace + "/" + i.Cluster }

// Name is the instance's name as users see it: "<cluster>-<ordinal>".
func (i *Instance) Name() string { return i.Cluster + "-" + strconv.Itoa(i.Ordinal) }

func (s *Store) instancePrefix(ns, name string) string {
	if ns == "" {
		return s.prefix + "/instances/"
	}
	return s.prefix + "/instances/" + ns + "/" + name + "/"
}

func (s *Store) instanceKey(i *Instance) string {
	return s.instancePrefix(i.Namespace, i.Cluster) + fmt.Sprintf("%04d", i.Ordinal)
}

// PutInstance writes inst if nobody changed it since it was read (a record
// with ModRevision 0 must not exist yet), and updates inst.ModRevision.
func (s *Store) PutInstance(ctx context.Context, inst *Instance) error {
	raw, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("encode instance %s: %w", inst.Key(), err)
	}
	rev, err := s.casPut(ctx, s.instanceKey(inst), string(raw), inst.ModRevision)
	if err != nil {
		return fmt.Errorf("write instance %s: %w", inst.Key(), err)
	}
	inst.ModRevision = rev
	return nil
}

// DeleteInstance removes inst's record if nobody changed it since it was read.
func (s *Store) DeleteInstance(ctx context.Context, inst *Instance) error {
	if err := s.casDelete(ctx, s.instanceKey(inst), inst.ModRevision); err != nil {
		return fmt.Errorf("delete instance %s: %w", inst.Key(), err)
	}
	return nil
}

// ListInstances returns the instances of one cluster by ordinal; an empty
// namespace lists every instance of every cluster.
func (s *Store) ListInstances(ctx context.Context, ns, name string) ([]*Instance, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.instancePrefix(ns, name), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return s.decodeInstances(resp.Kvs)
}

// decodeInstances decodes instance records, sorted by cluster and ordinal.
func (s *Store) decodeInstances(kvs []*mvccpb.KeyValue) ([]*Instance, error) {
	out := make([]*Instance, 0, len(kvs))
	for _, kv := range kvs {
		var inst Instance
		if err := json.Unmarshal(kv.Value, &inst); err != nil {
			return nil, fmt.Errorf("decode instance %s: %w", strings.TrimPrefix(string(kv.Key), s.prefix), err)
		}
		inst.ModRevision = kv.ModRevision
		out = append(out, &inst)
	}
	slices.SortFunc(out, func(a, b *Instance) int {
		if c := strings.Compare(a.ClusterKey(), b.ClusterKey()); c != 0 {
			return c
		}
		return a.Ordinal - b.Ordinal
	})
	return out, nil
}

// SetFinalizers changes the finalizers of the cluster with the given uid.
// When the cluster is being deleted and no finalizer is left, its keys are
// removed: the last finalizer's owner completes the deletion.
func (s *Store) SetFinalizers(ctx context.Context, ns, name, uid string, finalizers []string) error {
	snap, err := s.read(ctx, ns, name)
	if err != nil {
		return err
	}
	if snap.obj.Metadata.UID != uid {
		return fmt.Errorf("cluster %s/%s with uid %s: %w", ns, name, uid, ErrNotFound)
	}
	if snap.obj.Metadata.DeletionTimestamp != nil && len(finalizers) == 0 {
		return s.deleteKeys(ctx, snap.obj, snap.specRev)
	}
	if slices.Equal(snap.obj.Metadata.Finalizers, finalizers) {
		return nil
	}
	next := *snap.obj
	next.Metadata.Finalizers = slices.Clone(finalizers)
	_, err = s.putSpecIfUnchanged(ctx, &next, snap.specRev, next.Spec.Router)
	return err
}
