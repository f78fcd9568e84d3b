// Package store keeps MySQLCluster objects in etcd.
//
// Spec and status live under separate keys so that the scheduler writing
// status can never clobber a user's spec edit, and a user's apply can never
// clobber status. Every write is a compare-and-swap: specs on their
// resourceVersion (the etcd mod revision of the spec key), statuses on the
// status key's revision and on the identity of the cluster they describe.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// Errors callers branch on; wrapped errors carry the details.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrConflict      = errors.New("conflict")
	// ErrRaced: a write's Unchanged condition failed: another cluster was
	// created or changed after the admission check read them.
	ErrRaced = errors.New("another change to the clusters raced this one")
)

// Unchanged is a condition on a create or update: no cluster spec of
// Namespace ("": of any namespace) was created or changed after Rev, the
// revision an admission check (a quota) read them at.
// Together with the check it makes the check exact: two applies that each
// pass it alone cannot both be written. Deletions are not seen; they only
// free what the check counted.
type Unchanged struct {
	Namespace string
	Rev       int64
}

func (s *Store) unchangedCmps(conds []Unchanged) []clientv3.Cmp {
	cmps := make([]clientv3.Cmp, 0, len(conds))
	for _, u := range conds {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.specPrefix(u.Namespace)), "<", u.Rev+1).WithPrefix())
	}
	return cmps
}

// DefaultPrefix is the etcd key prefix when none is configured.
const DefaultPrefix = "/mysos"

// DefaultTimeout bounds every etcd round trip whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// maxCASRetries bounds read-modify-write loops that lose races; each retry
// re-reads, so a few are plenty unless something writes in a tight loop.
const maxCASRetries = 8

// Store is the etcd-backed repository of clusters.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	now     func() time.Time
	// sealer, when set, seals the secrets (see WithSealer).
	sealer Sealer
}

// New returns a store that keeps its keys under prefix (e.g. "/mysos").
func New(cli *clientv3.Client, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{
		cli:     cli,
		prefix:  strings.TrimSuffix(prefix, "/"),
		timeout: DefaultTimeout,
		now:     func() time.Time { return time.Now().UTC().Truncate(time.Second) },
	}
}

// Client returns the underlying etcd client, for leader election and health checks.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Ping checks that etcd answers a linearizable read, i.e. has a quorum.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	_, err := s.cli.Get(ctx, s.prefix+"/clusters/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err
}

// Prefix returns the key prefix everything lives under.
func (s *Store) Prefix() string { return s.prefix }

// storedStatus is what sits under a status key: the status plus the UID of
// the cluster it belongs to, so that a stale status never attaches to a new
// cluster created under a deleted one's name.
type storedStatus struct {
	UID    string             `json:"uid"`
	Status spec.ClusterStatus `json:"status"`
}

func (s *Store) specKey(ns, name string) string   { return s.prefix + "/clusters/" + ns + "/" + name }
func (s *Store) statusKey(ns, name string) string { return s.prefix + "/status/" + ns + "/" + name }

func (s *Store) specPrefix(ns string) string {
	if ns == "" {
		return s.prefix + "/clusters/"
	}
	return s.prefix + "/clusters/" + ns + "/"
}

func (s *Store) statusPrefix(ns string) string {
	if ns == "" {
		return s.prefix + "/status/"
	}
	return s.prefix + "/status/" + ns + "/"
}

// withTimeout gives ctx a deadline when it has none.
func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// snapshot is one cluster's spec and status keys read at one revision.
type snapshot struct {
	obj       *spec.MySQLCluster
	specRev   int64 // mod revision of the spec key: the resourceVersion
	createRev int64 // create revision of the spec key: changes when a name is reused
	statusRev int64 // mod revision of the status key, 0 when absent
}

// read fetches spec and status of one cluster atomically.
func (s *Store) read(ctx context.Context, ns, name string) (*snapshot, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.specKey(ns, name)),
		clientv3.OpGet(s.statusKey(ns, name)),
	).Commit()
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", ns, name, err)
	}
	specKVs := resp.Responses[0].GetResponseRange().Kvs
	if len(specKVs) == 0 {
		return nil, fmt.Errorf("cluster %s/%s: %w", ns, name, ErrNotFound)
	}
	snap := &snapshot{specRev: specKVs[0].ModRevision, createRev: specKVs[0].CreateRevision}
	if snap.obj, err = decodeSpec(specKVs[0].Value, specKVs[0].ModRevision); err != nil {
		return nil, err
	}
	if statusKVs := resp.Responses[1].GetResponseRange().Kvs; len(statusKVs) > 0 {
		snap.statusRev = statusKVs[0].ModRevision
		attachStatus(snap.obj, statusKVs[0].Value)
	}
	return snap, nil
}

// Get returns one cluster with its status.
func (s *Store) Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error) {
	snap, err := s.read(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	return snap.obj, nil
}

// List returns the clusters of one namespace ("" for all), sorted by
// namespace and name, with their statuses, all read at one revision.
func (s *Store) List(ctx context.Context, ns string) ([]*spec.MySQLCluster, int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.specPrefix(ns), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
		clientv3.OpGet(s.statusPrefix(ns), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("list clusters: %w", err)
	}
	statuses := map[string][]byte{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		statuses[strings.TrimPrefix(string(kv.Key), s.statusPrefix(""))] = kv.Value
	}
	var out []*spec.MySQLCluster
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		obj, err := decodeSpec(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, err
		}
		if raw, ok := statuses[strings.TrimPrefix(string(kv.Key), s.specPrefix(""))]; ok {
			attachStatus(obj, raw)
		}
		out = append(out, obj)
	}
	return out, resp.Header.Revision, nil
}

// Create stores a new cluster if conds hold. The caller has defaulted and
// validated it; the store assigns uid, generation 1 and the creation time,
// and drops any status.
func (s *Store) Create(ctx context.Context, c *spec.MySQLCluster, conds ...Unchanged) (*spec.MySQLCluster, error) {
	return s.CreateWithPasswords(ctx, c, nil, conds...)
}

// CreateWithPasswords creates a cluster and, in the same transaction, the
// passwords of some of its accounts (chosen by the user rather than
// generated), so that no launch can see the cluster without them.
func (s *Store) CreateWithPasswords(ctx context.Context, c *spec.MySQLCluster, pw Passwords, conds ...Unchanged) (*spec.MySQLCluster, error) {
	obj := *c
	now := s.now()
	obj.Metadata.UID = uuid.NewString()
	obj.Metadata.Generation = 1
	obj.Metadata.CreationTimestamp = &now
	obj.Metadata.DeletionTimestamp = nil
	obj.Metadata.ResourceVersion = ""
	obj.Status = spec.ClusterStatus{}
	raw, err := encodeSpec(&obj)
	if err != nil {
		return nil, err
	}
	ns, name := obj.Metadata.Namespace, obj.Metadata.Name
	key := s.specKey(ns, name)
	// A status, passwords or events left under the name (written late for
	// a deleted incarnation) must not attach to the new cluster.
	ops := []clientv3.Op{clientv3.OpPut(key, string(raw)), clientv3.OpDelete(s.statusKey(ns, name)), clientv3.OpDelete(s.secretsKey(ns, name)),
		clientv3.OpDelete(s.eventsPrefix(ns, name), clientv3.WithPrefix())}
	if len(pw) > 0 {
		secrets, err := s.encodeSecrets(s.secretsKey(ns, name), storedSecrets{UID: obj.Metadata.UID, Passwords: pw})
		if err != nil {
			return nil, fmt.Errorf("create %s/%s: %w", ns, name, err)
		}
		ops[2] = clientv3.OpPut(s.secretsKey(ns, name), string(secrets))
	}
	claims := s.claimPorts(obj.Key(), nil, obj.Spec.Router)
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}, claims.cmps...)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(append(cmps, s.unchangedCmps(conds)...)...).
		Then(append(ops, claims.ops...)...).
		Else(append([]clientv3.Op{clientv3.OpGet(key, clientv3.WithCountOnly())}, claims.reads...)...).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("create %s/%s: %w", ns, name, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return nil, fmt.Errorf("cluster %s/%s: %w", ns, name, ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create %s/%s: %w", ns, name, s.portTakenOrRaced(ctx, claims.taken(resp.Responses, 1)))
	}
	obj.Metadata.ResourceVersion = formatRev(resp.Header.Revision)
	return &obj, nil
}

// Update replaces the user-owned parts of a cluster (labels, annotations,
// spec) if its resourceVersion is still expectedRV and conds hold.
// Generation moves only when the spec changes. Nothing is written when
// nothing changes; changed reports which happened.
func (s *Store) Update(ctx context.Context, c *spec.MySQLCluster, expectedRV string, conds ...Unchanged) (out *spec.MySQLCluster, changed bool, err error) {
	ns, name := c.Metadata.Namespace, c.Metadata.Name
	snap, err := s.read(ctx, ns, name)
	if err != nil {
		return nil, false, err
	}
	if expectedRV != formatRev(snap.specRev) {
		return nil, false, conflictError(ns, name, expectedRV, snap.specRev)
	}
	next, changed := spec.WithUserFields(snap.obj, c)
	if !changed {
		return snap.obj, false, nil
	}
	rev, err := s.putSpecIfUnchanged(ctx, next, snap.specRev, snap.obj.Spec.Router, conds...)
	if err != nil {
		return nil, false, err
	}
	next.Metadata.ResourceVersion = formatRev(rev)
	return next, true, nil
}

// putSpecIfUnchanged writes obj's spec key if its mod revision is still rev
// and conds hold, moving its router-port claims from those of prevRouter
// (the stored spec's router).
func (s *Store) putSpecIfUnchanged(ctx context.Context, obj *spec.MySQLCluster, rev int64, prevRouter *spec.RouterSpec, conds ...Unchanged) (int64, error) {
	raw, err := encodeSpec(obj)
	if err != nil {
		return 0, err
	}
	ns, name := obj.Metadata.Namespace, obj.Metadata.Name
	key := s.specKey(ns, name)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	claims := s.claimPorts(obj.Key(), prevRouter, obj.Spec.Router)
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)}, claims.cmps...)
	resp, err := s.cli.Txn(ctx).
		If(append(cmps, s.unchangedCmps(conds)...)...).
		Then(append([]clientv3.Op{clientv3.OpPut(key, string(raw))}, claims.ops...)...).
		Else(append([]clientv3.Op{clientv3.OpGet(key, clientv3.WithKeysOnly())}, claims.reads...)...).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("update %s/%s: %w", ns, name, err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) != 1 || kvs[0].ModRevision != rev {
			return 0, conflictError(ns, name, formatRev(rev), 0)
		}
		return 0, fmt.Errorf("update %s/%s: %w", ns, name, s.portTakenOrRaced(ctx, claims.taken(resp.Responses, 1)))
	}
	return resp.Header.Revision, nil
}

// Delete removes a cluster. With finalizers pending it only marks the cluster
// (deletionTimestamp) so the scheduler can finish its work first; deleted
// reports whether the keys are gone. A non-empty expectedRV is a precondition.
func (s *Store) Delete(ctx context.Context, ns, name, expectedRV string) (obj *spec.MySQLCluster, deleted bool, err error) {
	snap, err := s.read(ctx, ns, name)
	if err != nil {
		return nil, false, err
	}
	if expectedRV != "" && expectedRV != formatRev(snap.specRev) {
		return nil, false, conflictError(ns, name, expectedRV, snap.specRev)
	}
	if len(snap.obj.Metadata.Finalizers) > 0 {
		return s.markDeleting(ctx, snap)
	}
	if err := s.deleteKeys(ctx, snap.obj, snap.specRev); err != nil {
		return nil, false, err
	}
	return snap.obj, true, nil
}

func (s *Store) markDeleting(ctx context.Context, snap *snapshot) (*spec.MySQLCluster, bool, error) {
	if snap.obj.Metadata.DeletionTimestamp != nil {
		return snap.obj, false, nil
	}
	next := *snap.obj
	now := s.now()
	next.Metadata.DeletionTimestamp = &now
	rev, err := s.putSpecIfUnchanged(ctx, &next, snap.specRev, next.Spec.Router)
	if err != nil {
		return nil, false, err
	}
	next.Metadata.ResourceVersion = formatRev(rev)
	return &next, false, nil
}

// deleteKeys removes a cluster's spec, status, passwords, events, backup
// jobs, archiver record and router-port claims (not its backups) in one
// transaction, if the spec is still at specRev. Instance records are not
// among them (each goes once its resources are released) nor is the
// discovery record (kept so that a new incarnation's epoch starts above).
func (s *Store) deleteKeys(ctx context.Context, c *spec.MySQLCluster, specRev int64) error {
	ns, name := c.Metadata.Namespace, c.Metadata.Name
	key := s.specKey(ns, name)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	ops := []clientv3.Op{clientv3.OpDelete(key), clientv3.OpDelete(s.statusKey(ns, name)), clientv3.OpDelete(s.secretsKey(ns, name)),
		clientv3.OpDelete(s.eventsPrefix(ns, name), clientv3.WithPrefix()),
		clientv3.OpDelete(s.backupPrefix(ns, name), clientv3.WithPrefix()),
		clientv3.OpDelete(s.archiverKey(ns, name))}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", specRev)).
		Then(append(ops, s.releaseAll(c.Key(), c.Spec.Router)...)...).
		Commit()
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", ns, name, err)
	}
	if !resp.Succeeded {
		return conflictError(ns, name, formatRev(specRev), 0)
	}
	return nil
}

// UpdateStatus applies mutate to the status of the cluster with the given
// UID and writes it back, retrying when another status write raced it. The
// spec key is never touched. Nothing is written when mutate changes nothing.
func (s *Store) UpdateStatus(ctx context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error) {
	for range maxCASRetries {
		snap, err := s.read(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		if obj, done, err := s.tryUpdateStatus(ctx, snap, uid, mutate); done || err != nil {
			return obj, err
		}
	}
	return nil, fmt.Errorf("status of %s/%s: %w: too many concurrent writers", ns, name, ErrConflict)
}

// tryUpdateStatus applies mutate to the status snap holds and writes it if
// it changed and nobody wrote it since snap was read; done is false when
// somebody did.
func (s *Store) tryUpdateStatus(ctx context.Context, snap *snapshot, uid string, mutate func(*spec.ClusterStatus) error) (obj *spec.MySQLCluster, done bool, err error) {
	if snap.obj.Metadata.UID != uid {
		return nil, false, fmt.Errorf("cluster %s/%s with uid %s: %w", snap.obj.Metadata.Namespace, snap.obj.Metadata.Name, uid, ErrNotFound)
	}
	before := snap.obj.Status
	next := *snap.obj
	next.Status = *deepCopyStatus(&before)
	if err := mutate(&next.Status); err != nil {
		return nil, false, err
	}
	if spec.SameJSON(before, next.Status) {
		return snap.obj, true, nil
	}
	ok, err := s.putStatusIfUnchanged(ctx, snap, &next)
	if err != nil || !ok {
		return nil, false, err
	}
	return &next, true, nil
}

func (s *Store) putStatusIfUnchanged(ctx context.Context, snap *snapshot, next *spec.MySQLCluster) (bool, error) {
	raw, err := json.Marshal(storedStatus{UID: next.Metadata.UID, Status: next.Status})
	if err != nil {
		return false, fmt.Errorf("encode status: %w", err)
	}
	ns, name := next.Metadata.Namespace, next.Metadata.Name
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(
			clientv3.Compare(clientv3.CreateRevision(s.specKey(ns, name)), "=", snap.createRev),
			clientv3.Compare(clientv3.ModRevision(s.statusKey(ns, name)), "=", snap.statusRev),
		).
		Then(clientv3.OpPut(s.statusKey(ns, name), string(raw))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("update status of %s/%s: %w", ns, name, err)
	}
	return resp.Succeeded, nil
}

func conflictError(ns, name, expected string, actual int64) error {
	if actual > 0 {
		return fmt.Errorf("cluster %s/%s: %w: resourceVersion %q is stale, the stored one is %q; get the cluster again and retry",
			ns, name, ErrConflict, expected, formatRev(actual))
	}
	return fmt.Errorf("cluster %s/%s: %w: it changed while being written; get it again and retry", ns, name, ErrConflict)
}

// encodeSpec serialises the user- and server-owned metadata and the spec;
// status and resourceVersion are never stored under the spec key.
func encodeSpec(c *spec.MySQLCluster) ([]byte, error) {
	obj := *c
	obj.Metadata.ResourceVersion = ""
	obj.Status = spec.ClusterStatus{}
	raw, err := json.Marshal(&obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.Key(), err)
	}
	return raw, nil
}

func decodeSpec(raw []byte, modRev int64) (*spec.MySQLCluster, error) {
	var obj spec.MySQLCluster
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decode stored cluster: %w", err)
	}
	obj.Status = spec.ClusterStatus{}
	obj.Metadata.ResourceVersion = formatRev(modRev)
	return &obj, nil
}

// attachStatus sets obj's status from a stored status that belongs to it.
func attachStatus(obj *spec.MySQLCluster, raw []byte) {
	var st storedStatus
	if json.Unmarshal(raw, &st) == nil && st.UID == obj.Metadata.UID {
		obj.Status = st.Status
	}
}

func deepCopyStatus(st *spec.ClusterStatus) *spec.ClusterStatus {
	raw, _ := json.Marshal(st)
	var out spec.ClusterStatus
	_ = json.Unmarshal(raw, &out)
	return &out
}

func formatRev(rev int64) string { return strconv.FormatInt(rev, 10) }
