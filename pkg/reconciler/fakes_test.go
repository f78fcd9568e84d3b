package reconciler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// fakeStore keeps clusters and instance records in memory, with the
// compare-and-swap semantics of pkg/store, and counts status writes.
type fakeStore struct {
	mu           sync.Mutex
	clusters     map[string]*spec.MySQLCluster
	instances    map[string]*store.Instance // by Key()
	rev          int64
	statusWrites int
	endpoints    map[string]spec.Endpoints
	passwords    store.Passwords
	events       []spec.Event
	jobs         map[string]*store.BackupJob // by cluster key + "/" + id
	archivers    map[string]*store.Archiver  // by cluster key
	cas          map[string]store.ClusterCA  // by cluster key + "/" + uid
	casMade      int
}

func (f *fakeStore) EnsureClusterCA(_ context.Context, ns, name, uid string, generate func() (store.ClusterCA, error)) (store.ClusterCA, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + name + "/" + uid
	if ca, ok := f.cas[key]; ok {
		return ca, nil
	}
	ca, err := generate()
	if err != nil {
		return store.ClusterCA{}, err
	}
	if f.cas == nil {
		f.cas = map[string]store.ClusterCA{}
	}
	f.cas[key] = ca
	f.casMade++
	return ca, nil
}

func (f *fakeStore) ClusterCA(_ context.Context, ns, name, uid string) (store.ClusterCA, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ca, ok := f.cas[ns+"/"+name+"/"+uid]
	return ca, ok, nil
}

func (f *fakeStore) GetArchiver(_ context.Context, ns, name string) (*store.Archiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.archivers[ns+"/"+name]; ok {
		cp := *a
		return &cp, nil
	}
	return nil, nil
}

func (f *fakeStore) ListArchivers(context.Context) ([]*store.Archiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Archiver
	for _, a := range f.archivers {
		cp := *a
		out = append(out, &cp)
	}
	return out, nil
}

func (f *fakeStore) PutArchiver(_ context.Context, a *store.Archiver) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.archivers == nil {
		f.archivers = map[string]*store.Archiver{}
	}
	old, ok := f.archivers[a.ClusterKey()]
	if (ok && old.ModRevision != a.ModRevision) || (!ok && a.ModRevision != 0) {
		return store.ErrConflict
	}
	f.rev++
	a.ModRevision = f.rev
	cp := *a
	f.archivers[a.ClusterKey()] = &cp
	return nil
}

func (f *fakeStore) DeleteArchiver(_ context.Context, a *store.Archiver) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.archivers[a.ClusterKey()]; !ok || old.ModRevision != a.ModRevision {
		return store.ErrConflict
	}
	delete(f.archivers, a.ClusterKey())
	return nil
}

func (f *fakeStore) PutBackupJob(_ context.Context, j *store.BackupJob) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobs == nil {
		f.jobs = map[string]*store.BackupJob{}
	}
	key := j.ClusterKey() + "/" + j.ID
	old, ok := f.jobs[key]
	if (ok && old.ModRevision != j.ModRevision) || (!ok && j.ModRevision != 0) {
		return store.ErrConflict
	}
	f.rev++
	j.ModRevision = f.rev
	cp := *j
	f.jobs[key] = &cp
	return nil
}

func (f *fakeStore) DeleteBackupJob(_ context.Context, j *store.BackupJob) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := j.ClusterKey() + "/" + j.ID
	if old, ok := f.jobs[key]; !ok || old.ModRevision != j.ModRevision {
		return store.ErrConflict
	}
	delete(f.jobs, key)
	return nil
}

func (f *fakeStore) ListBackupJobs(_ context.Context, ns, name string) ([]*store.BackupJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.BackupJob
	for _, j := range f.jobs {
		if ns == "" || (j.Namespace == ns && j.Cluster == name) {
			cp := *j
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *store.BackupJob) int {
		return strings.Compare(a.ClusterKey()+"/"+a.ID, b.ClusterKey()+"/"+b.ID)
	})
	return out, nil
}

func (f *fakeStore) RecordEvent(_ context.Context, ev spec.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	return nil
}

func newFakeStore(clusters ...*spec.MySQLCluster) *fakeStore {
	f := &fakeStore{clusters: map[string]*spec.MySQLCluster{}, instances: map[string]*store.Instance{}}
	for _, c := range clusters {
		f.clusters[c.Key()] = c
	}
	return f
}

func (f *fakeStore) Get(_ context.Context, ns, name string) (*spec.MySQLCluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("cluster %s/%s: %w", ns, name, store.ErrNotFound)
	}
	cp := *c
	cp.Metadata.Finalizers = slices.Clone(c.Metadata.Finalizers)
	return &cp, nil
}

// ReadCluster composes the fake's reads, as the real store's one
// transaction returns them.
func (f *fakeStore) ReadCluster(ctx context.Context, ns, name string) (*store.ClusterState, error) {
	c, err := f.Get(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	st := &store.ClusterState{Cluster: c}
	if st.Instances, err = f.ListInstances(ctx, ns, name); err != nil {
		return nil, err
	}
	if st.BackupJobs, err = f.ListBackupJobs(ctx, ns, name); err != nil {
		return nil, err
	}
	if st.Archiver, err = f.GetArchiver(ctx, ns, name); err != nil {
		return nil, err
	}
	return st, nil
}

func (f *fakeStore) UpdateStatusFrom(ctx context.Context, st *store.ClusterState, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error) {
	m := st.Cluster.Metadata
	return f.UpdateStatus(ctx, m.Namespace, m.Name, m.UID, mutate)
}

func (f *fakeStore) UpdateStatus(_ context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[ns+"/"+name]
	if !ok || c.Metadata.UID != uid {
		return nil, store.ErrNotFound
	}
	next := c.Status
	next.Conditions = slices.Clone(c.Status.Conditions)
	next.Instances = slices.Clone(c.Status.Instances)
	if err := mutate(&next); err != nil {
		return nil, err
	}
	if !spec.SameJSON(next, c.Status) {
		c.Status = next
		f.statusWrites++
	}
	return c, nil
}

func (f *fakeStore) SetFinalizers(_ context.Context, ns, name, uid string, finalizers []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[ns+"/"+name]
	if !ok || c.Metadata.UID != uid {
		return store.ErrNotFound
	}
	if c.Metadata.DeletionTimestamp != nil && len(finalizers) == 0 {
		delete(f.clusters, ns+"/"+name)
		return nil
	}
	c.Metadata.Finalizers = slices.Clone(finalizers)
	return nil
}

func (f *fakeStore) ListInstances(_ context.Context, ns, name string) ([]*store.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Instance
	for _, inst := range f.instances {
		if ns == "" || inst.ClusterKey() == ns+"/"+name {
			cp := *inst
			out = append(out, &cp)
		}
	}
	slices.SortFunc(out, func(a, b *store.Instance) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

func (f *fakeStore) PutInstance(_ context.Context, inst *store.Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.instances[inst.Key()]
	if (ok && old.ModRevision != inst.ModRevision) || (!ok && inst.ModRevision != 0) {
		return store.ErrConflict
	}
	f.rev++
	inst.ModRevision = f.rev
	cp := *inst
	f.instances[inst.Key()] = &cp
	return nil
}

func (f *fakeStore) DeleteInstance(_ context.Context, inst *store.Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.instances[inst.Key()]
	if !ok || old.ModRevision != inst.ModRevision {
		return store.ErrConflict
	}
	delete(f.instances, inst.Key())
	return nil
}

func (f *fakeStore) instance(key string) *store.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances[key]
}

// fakeMesos records calls and serves a task table the test fills.
type fakeMesos struct {
	mu      sync.Mutex
	ok      bool
	reason  string
	tasks   map[string]framework.Task
	kills   []string
	revives int
	asked   []string
}

func (m *fakeMesos) Subscribed() (bool, string) { return m.ok, m.reason }

func (m *fakeMesos) Task(id string) (framework.Task, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[id]
	return t, ok
}

func (m *fakeMesos) TasksWithPrefix(prefix string) []framework.Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []framework.Task
	for id, t := range m.tasks {
		if strings.HasPrefix(id, prefix) {
			out = append(out, t)
		}
	}
	return out
}

func (m *fakeMesos) Kill(_ context.Context, taskID, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kills = append(m.kills, taskID)
	return nil
}

func (m *fakeMesos) Revive(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revives++
	return nil
}

func (m *fakeMesos) ReconcileTasks(_ context.Context, tasks []framework.TaskRef) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range tasks {
		m.asked = append(m.asked, t.ID)
	}
	return nil
}

func (m *fakeMesos) setTask(t framework.Task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tasks == nil {
		m.tasks = map[string]framework.Task{}
	}
	m.tasks[t.ID] = t
}

func (f *fakeStore) PublishEndpoints(_ context.Context, ns, name, _ string, e spec.Endpoints, _ map[string]float64) (spec.Endpoints, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.endpoints == nil {
		f.endpoints = map[string]spec.Endpoints{}
	}
	cur := f.endpoints[ns+"/"+name]
	if cur.Primary == e.Primary && slices.Equal(cur.Replicas, e.Replicas) && cur.Epoch > 0 {
		return cur, nil
	}
	e.Epoch = cur.Epoch + 1
	f.endpoints[ns+"/"+name] = e
	return e, nil
}

func (f *fakeStore) EnsurePasswords(_ context.Context, ns, name, _ string, accounts ...string) (store.Passwords, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.passwords == nil {
		f.passwords = store.Passwords{}
	}
	for _, a := range accounts {
		if f.passwords[a] == "" {
			f.passwords[a] = "pw-" + a
		}
	}
	return f.passwords, nil
}
