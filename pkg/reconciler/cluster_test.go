package reconciler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// fakeStore keeps clusters in memory and counts status writes.
type fakeStore struct {
	clusters     map[string]*spec.MySQLCluster
	statusWrites int
}

func (f *fakeStore) Get(_ context.Context, ns, name string) (*spec.MySQLCluster, error) {
	c, ok := f.clusters[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("cluster %s/%s: %w", ns, name, store.ErrNotFound)
	}
	cp := *c
	return &cp, nil
}

func (f *fakeStore) UpdateStatus(_ context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error) {
	c, ok := f.clusters[ns+"/"+name]
	if !ok || c.Metadata.UID != uid {
		return nil, store.ErrNotFound
	}
	next := c.Status
	next.Conditions = append([]spec.Condition(nil), c.Status.Conditions...)
	if err := mutate(&next); err != nil {
		return nil, err
	}
	if !spec.SameJSON(next, c.Status) {
		c.Status = next
		f.statusWrites++
	}
	return c, nil
}

type fakeMesos struct {
	ok     bool
	reason string
}

func (m fakeMesos) Subscribed() (bool, string) { return m.ok, m.reason }

func newFake(generation int64) *fakeStore {
	return &fakeStore{clusters: map[string]*spec.MySQLCluster{
		"default/shop": {Metadata: spec.ObjectMeta{Name: "shop", Namespace: "default", UID: "u1", Generation: generation}},
	}}
}

func TestReconcileReportsMesosUnavailable(t *testing.T) {
	fs := newFake(3)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &ClusterReconciler{Store: fs, Mesos: fakeMesos{reason: "no --master"}, Now: func() time.Time { return now }}
	res, err := r.Reconcile(context.Background(), "default/shop")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter <= 0 {
		t.Fatal("no periodic resync requested")
	}
	st := fs.clusters["default/shop"].Status
	if st.Phase != spec.PhasePending || st.ObservedGeneration != 3 {
		t.Fatalf("phase %q observedGeneration %d; want Pending and 3", st.Phase, st.ObservedGeneration)
	}
	ready := st.FindCondition(spec.ConditionReady)
	if ready == nil || ready.Status != spec.ConditionFalse || ready.Reason != ReasonMesosUnavailable || ready.ObservedGeneration != 3 {
		t.Fatalf("Ready condition %+v; want False/MesosUnavailable at generation 3", ready)
	}
	if acc := st.FindCondition(spec.ConditionAccepted); acc == nil || acc.Status != spec.ConditionTrue {
		t.Fatalf("Accepted condition %+v; want True", acc)
	}
}

// TestReconcileIsIdempotent: a second pass over an unchanged world writes nothing.
func TestReconcileIsIdempotent(t *testing.T) {
	fs := newFake(1)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &ClusterReconciler{Store: fs, Mesos: fakeMesos{reason: "x"}, Now: func() time.Time { return clock }}
	for range 3 {
		if _, err := r.Reconcile(context.Background(), "default/shop"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	if fs.statusWrites != 1 {
		t.Fatalf("%d status writes for one unchanged cluster; want 1", fs.statusWrites)
	}
}

// TestConditionTransitionTimeMovesOnlyOnStatusChange.
func TestConditionTransitionTimeMovesOnlyOnStatusChange(t *testing.T) {
	fs := newFake(1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := t0
	mesos := &fakeMesos{reason: "down"}
	r := &ClusterReconciler{Store: fs, Mesos: mesos, Now: func() time.Time { return clock }}
	reconcile := func() *spec.Condition {
		t.Helper()
		if _, err := r.Reconcile(context.Background(), "default/shop"); err != nil {
			t.Fatal(err)
		}
		return fs.clusters["default/shop"].Status.FindCondition(spec.ConditionReady)
	}
	reconcile()
	clock = t0.Add(time.Hour)
	r.Mesos = fakeMesos{ok: true}
	if c := reconcile(); c.Reason != ReasonLaunchPending || !c.LastTransitionTime.Equal(t0) {
		t.Fatalf("reason changed but status did not: %+v; lastTransitionTime must stay %v", c, t0)
	}
}

func TestReconcileOfADeletedClusterIsANoOp(t *testing.T) {
	fs := &fakeStore{clusters: map[string]*spec.MySQLCluster{}}
	r := &ClusterReconciler{Store: fs, Mesos: fakeMesos{}}
	if _, err := r.Reconcile(context.Background(), "default/gone"); err != nil {
		t.Fatalf("deleted cluster: %v", err)
	}
	if _, err := r.Reconcile(context.Background(), "no-slash"); err == nil {
		t.Fatal("a malformed key was accepted")
	}
}
