package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// backends runs a test against the embedded etcd and against Debian's etcd
// as an external process, since Mysos supports both.
func backends(t *testing.T, test func(t *testing.T, s *store.Store)) {
	for name, start := range map[string]func(testing.TB) []string{
		"embedded": testutil.EmbeddedEtcd,
		"external": testutil.ExternalEtcd,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, store.New(testutil.EtcdClient(t, start(t)), "/mysos-test"))
		})
	}
}

func newCluster(name string, replicas int32) *spec.MySQLCluster {
	c := &spec.MySQLCluster{
		APIVersion: spec.APIVersion, Kind: spec.Kind,
		Metadata: spec.ObjectMeta{Name: name, Labels: map[string]string{"team": "a"}},
		Spec:     spec.ClusterSpec{Replicas: &replicas},
	}
	spec.SetDefaults(c)
	return c
}

func TestStore(t *testing.T) {
	backends(t, func(t *testing.T, s *store.Store) {
		t.Run("CreateAssignsIdentity", func(t *testing.T) { testCreate(t, s) })
		t.Run("UpdateBumpsGenerationOnlyForSpec", func(t *testing.T) { testUpdateGeneration(t, s) })
		t.Run("StaleResourceVersionConflicts", func(t *testing.T) { testConflict(t, s) })
		t.Run("StatusAndSpecNeverClobber", func(t *testing.T) { testStatusSeparation(t, s) })
		t.Run("StatusDoesNotSurviveRecreate", func(t *testing.T) { testRecreate(t, s) })
		t.Run("DeleteHonoursFinalizers", func(t *testing.T) { testDeleteFinalizers(t, s) })
		t.Run("ListByNamespace", func(t *testing.T) { testList(t, s) })
		t.Run("WatchKeys", func(t *testing.T) { testWatch(t, s) })
		t.Run("Election", func(t *testing.T) { testElection(t, s) })
		t.Run("FrameworkID", func(t *testing.T) { testFrameworkID(t, s) })
		t.Run("InstancesCompareAndSwap", func(t *testing.T) { testInstances(t, s) })
		t.Run("LastFinalizerCompletesDeletion", func(t *testing.T) { testFinalizerRemoval(t, s) })
		t.Run("Passwords", func(t *testing.T) { testPasswords(t, s) })
		t.Run("Endpoints", func(t *testing.T) { testEndpoints(t, s) })
		t.Run("EventsListedOldestFirst", func(t *testing.T) { testEvents(t, s) })
		t.Run("EventsBounded", func(t *testing.T) { testEventsBounded(t, s) })
		t.Run("EventsGoWithTheCluster", func(t *testing.T) { testEventsDeleted(t, s) })
		t.Run("ReadClusterAndUpdateStatusFrom", func(t *testing.T) { testReadCluster(t, s) })
		t.Run("UnchangedConditionsCatchRaces", func(t *testing.T) { testUnchanged(t, s) })
		t.Run("RouterPortsClaimedByOneCluster", func(t *testing.T) { testRouterPortClaims(t, s) })
	})
}

func testCreate(t *testing.T, s *store.Store) {
	ctx := context.Background()
	got, err := s.Create(ctx, newCluster("create", 3))
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.UID == "" || got.Metadata.Generation != 1 || got.Metadata.ResourceVersion == "" || got.Metadata.CreationTimestamp == nil {
		t.Fatalf("identity not assigned: %+v", got.Metadata)
	}
	if _, err := s.Create(ctx, newCluster("create", 1)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second create: got %v, want ErrAlreadyExists", err)
	}
	read, err := s.Get(ctx, "default", "create")
	if err != nil {
		t.Fatal(err)
	}
	if *read.Spec.Replicas != 3 || read.Metadata.ResourceVersion != got.Metadata.ResourceVersion || read.Metadata.UID != got.Metadata.UID {
		t.Fatalf("read back %+v, want what was created %+v", read.Metadata, got.Metadata)
	}
}

func testUpdateGeneration(t *testing.T, s *store.Store) {
	ctx := context.Background()
	created, err := s.Create(ctx, newCluster("gen", 3))
	if err != nil {
		t.Fatal(err)
	}
	same, changed, err := s.Update(ctx, newCluster("gen", 3), created.Metadata.ResourceVersion)
	if err != nil || changed || same.Metadata.Generation != 1 || same.Metadata.ResourceVersion != created.Metadata.ResourceVersion {
		t.Fatalf("no-op update: changed=%v gen=%d rv=%s err=%v; want unchanged", changed, same.Metadata.Generation, same.Metadata.ResourceVersion, err)
	}
	relabelled := newCluster("gen", 3)
	relabelled.Metadata.Labels["tier"] = "db"
	afterLabel, changed, err := s.Update(ctx, relabelled, created.Metadata.ResourceVersion)
	if err != nil || !changed || afterLabel.Metadata.Generation != 1 || afterLabel.Metadata.ResourceVersion == created.Metadata.ResourceVersion {
		t.Fatalf("label update: changed=%v gen=%d err=%v; want changed, generation 1, new rv", changed, afterLabel.Metadata.Generation, err)
	}
	scaled := newCluster("gen", 5)
	scaled.Metadata.Labels = relabelled.Metadata.Labels
	afterScale, changed, err := s.Update(ctx, scaled, afterLabel.Metadata.ResourceVersion)
	if err != nil || !changed || afterScale.Metadata.Generation != 2 {
		t.Fatalf("spec update: changed=%v gen=%d err=%v; want generation 2", changed, afterScale.Metadata.Generation, err)
	}
	if afterScale.Metadata.UID != created.Metadata.UID || !afterScale.Metadata.CreationTimestamp.Equal(*created.Metadata.CreationTimestamp) {
		t.Fatal("update changed server-owned identity")
	}
}

func testConflict(t *testing.T, s *store.Store) {
	ctx := context.Background()
	created, err := s.Create(ctx, newCluster("conflict", 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, newCluster("conflict", 5), created.Metadata.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Update(ctx, newCluster("conflict", 7), created.Metadata.ResourceVersion)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: got %v, want ErrConflict", err)
	}
	if _, _, err := s.Delete(ctx, "default", "conflict", created.Metadata.ResourceVersion); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale delete: got %v, want ErrConflict", err)
	}
	got, err := s.Get(ctx, "default", "conflict")
	if err != nil || *got.Spec.Replicas != 5 {
		t.Fatalf("after refused writes: replicas=%v err=%v, want 5", got.Spec.Replicas, err)
	}
}

func testStatusSeparation(t *testing.T, s *store.Store) {
	ctx := context.Background()
	created, err := s.Create(ctx, newCluster("sep", 3))
	if err != nil {
		t.Fatal(err)
	}
	// A user edit lands between the scheduler's read and its status write.
	edited, _, err := s.Update(ctx, newCluster("sep", 5), created.Metadata.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	withStatus, err := s.UpdateStatus(ctx, "default", "sep", created.Metadata.UID, func(st *spec.ClusterStatus) error {
		st.Phase = spec.PhaseRunning
		st.ObservedGeneration = 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if *withStatus.Spec.Replicas != 5 {
		t.Fatalf("status write clobbered the spec: replicas %d", *withStatus.Spec.Replicas)
	}
	// The status write must not invalidate the user's resourceVersion either.
	if _, _, err := s.Update(ctx, newCluster("sep", 7), edited.Metadata.ResourceVersion); err != nil {
		t.Fatalf("spec update after a status write: %v", err)
	}
	got, err := s.Get(ctx, "default", "sep")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != spec.PhaseRunning || *got.Spec.Replicas != 7 {
		t.Fatalf("got phase %q replicas %d; want Running and 7", got.Status.Phase, *got.Spec.Replicas)
	}
}

func testRecreate(t *testing.T, s *store.Store) {
	ctx := context.Background()
	first, err := s.Create(ctx, newCluster("again", 3))
	if err != nil {
		t.Fatal(err)
	}
	setPhase := func(st *spec.ClusterStatus) error { st.Phase = spec.PhaseRunning; return nil }
	if _, err := s.UpdateStatus(ctx, "default", "again", first.Metadata.UID, setPhase); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err := s.Delete(ctx, "default", "again", ""); err != nil || !deleted {
		t.Fatalf("delete: deleted=%v err=%v", deleted, err)
	}
	second, err := s.Create(ctx, newCluster("again", 3))
	if err != nil {
		t.Fatal(err)
	}
	if second.Metadata.UID == first.Metadata.UID || second.Status.Phase != "" {
		t.Fatalf("recreated cluster inherited identity or status: %+v", second)
	}
	if _, err := s.UpdateStatus(ctx, "default", "again", first.Metadata.UID, setPhase); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("status write for the old uid: got %v, want ErrNotFound", err)
	}
}

func testDeleteFinalizers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	c := newCluster("fin", 3)
	c.Metadata.Finalizers = []string{"mysos.io/tasks"}
	if _, err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	obj, deleted, err := s.Delete(ctx, "default", "fin", "")
	if err != nil || deleted || obj.Metadata.DeletionTimestamp == nil {
		t.Fatalf("delete with finalizer: deleted=%v err=%v; want marked only", deleted, err)
	}
	if _, err := s.Get(ctx, "default", "fin"); err != nil {
		t.Fatalf("marked cluster vanished: %v", err)
	}
	if _, _, err := s.Delete(ctx, "default", "missing", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a missing cluster: got %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, ns := range []string{"list-a", "list-b"} {
		c := newCluster("one", 1)
		c.Metadata.Namespace = ns
		if _, err := s.Create(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	items, _, err := s.List(ctx, "list-a")
	if err != nil || len(items) != 1 || items[0].Metadata.Namespace != "list-a" {
		t.Fatalf("list-a: %d items, err %v; want exactly its own cluster", len(items), err)
	}
	// A namespace whose name prefixes another must not see the other's clusters.
	items, _, err = s.List(ctx, "list")
	if err != nil || len(items) != 0 {
		t.Fatalf("namespace \"list\": %d items, err %v; want none", len(items), err)
	}
}

func testWatch(t *testing.T, s *store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Create(ctx, newCluster("watch-before", 1)); err != nil {
		t.Fatal(err)
	}
	keys := s.WatchKeys(ctx)
	waitKey(t, keys, "default/watch-before")
	if _, err := s.Create(ctx, newCluster("watch-after", 1)); err != nil {
		t.Fatal(err)
	}
	waitKey(t, keys, "default/watch-after")
	// A request written into the status (a switchover) wakes the
	// reconciler as a spec change does.
	c, err := s.Get(ctx, "default", "watch-before")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateStatus(ctx, "default", "watch-before", c.Metadata.UID, func(st *spec.ClusterStatus) error {
		st.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover, Step: spec.StepRequested}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitKey(t, keys, "default/watch-before")
	// So does a backup requested through the API.
	requested := time.Now()
	j := store.NewBackupJob(c, spec.BackupOnDemand, requested, "file:///backups")
	if err := s.PutBackupJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	waitKey(t, keys, "default/watch-before")
	if err := s.PutBackupJob(ctx, store.NewBackupJob(c, spec.BackupOnDemand, requested, "file:///backups")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second job with the same id: %v; want a conflict", err)
	}
	if jobs, err := s.ListBackupJobs(ctx, "default", "watch-before"); err != nil || len(jobs) != 1 || jobs[0].ID != j.ID {
		t.Fatalf("jobs %+v, %v; want %s", jobs, err, j.ID)
	}
	if _, _, err := s.Delete(ctx, "default", "watch-after", ""); err != nil {
		t.Fatal(err)
	}
	waitKey(t, keys, "default/watch-after")
}

func waitKey(t *testing.T, keys <-chan string, want string) {
	t.Helper()
	for key := range keys {
		if key == want {
			return
		}
	}
	t.Fatalf("watch ended before %s was seen", want)
}

func testElection(t *testing.T, s *store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := s.Campaign(ctx, "first", 5)
	if err != nil {
		t.Fatal(err)
	}
	if leader, err := s.Leader(ctx); err != nil || leader != "first" {
		t.Fatalf("leader = %q, %v; want first", leader, err)
	}
	won := make(chan *store.Leadership, 1)
	go func() {
		second, err := s.Campaign(ctx, "second", 5)
		if err == nil {
			won <- second
		}
	}()
	select {
	case <-won:
		t.Fatal("a second leader was elected while the first still led")
	default:
	}
	if err := first.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case second := <-won:
		if leader, _ := s.Leader(ctx); leader != "second" {
			t.Fatalf("leader = %q after the first resigned; want second", leader)
		}
		_ = second.Resign(ctx)
	case <-ctx.Done():
		t.Fatal("the second campaigner never won after the first resigned")
	}
}

func testFrameworkID(t *testing.T, s *store.Store) {
	ctx := context.Background()
	if id, err := s.FrameworkID(ctx); err != nil || id != "" {
		t.Fatalf("fresh store: id %q, err %v; want none", id, err)
	}
	if err := s.SetFrameworkID(ctx, "abc-0001"); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.FrameworkID(ctx); id != "abc-0001" {
		t.Fatalf("id = %q after set", id)
	}
	if err := s.SetFrameworkID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.FrameworkID(ctx); id != "" {
		t.Fatalf("id = %q after forgetting it", id)
	}
}

func testInstances(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a := &store.Instance{Namespace: "default", Cluster: "inst", ClusterUID: "u", Ordinal: 10, Phase: store.InstancePending}
	b := &store.Instance{Namespace: "default", Cluster: "inst", ClusterUID: "u", Ordinal: 2, Phase: store.InstancePending}
	other := &store.Instance{Namespace: "default", Cluster: "inst2", ClusterUID: "v", Ordinal: 0}
	for _, i := range []*store.Instance{a, b, other} {
		if err := s.PutInstance(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutInstance(ctx, &store.Instance{Namespace: "default", Cluster: "inst", Ordinal: 2}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("creating an existing record: %v; want ErrConflict", err)
	}
	stale := *b
	b.Phase, b.TaskID = store.InstanceLaunched, "t1"
	if err := s.PutInstance(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.PutInstance(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a write from a stale read: %v; want ErrConflict", err)
	}
	got, err := s.ListInstances(ctx, "default", "inst")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Ordinal != 2 || got[1].Ordinal != 10 || got[0].TaskID != "t1" || got[0].ModRevision != b.ModRevision {
		t.Fatalf("listed %+v; want ordinals 2 (task t1) and 10, by ordinal", got)
	}
	if all, _ := s.ListInstances(ctx, "", ""); len(all) < 3 {
		t.Fatalf("listing every instance gave %d", len(all))
	}
	if err := s.DeleteInstance(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("deleting from a stale read: %v; want ErrConflict", err)
	}
	if err := s.DeleteInstance(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListInstances(ctx, "default", "inst"); len(got) != 1 {
		t.Fatalf("%d records after delete; want 1", len(got))
	}
}

func testFinalizerRemoval(t *testing.T, s *store.Store) {
	ctx := context.Background()
	c, err := s.Create(ctx, newCluster("finalize", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetFinalizers(ctx, "default", "finalize", c.Metadata.UID, []string{"mysos.io/tasks"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFinalizers(ctx, "default", "finalize", "wrong-uid", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finalizers of another incarnation: %v; want ErrNotFound", err)
	}
	got, _ := s.Get(ctx, "default", "finalize")
	if _, deleted, err := s.Delete(ctx, "default", "finalize", ""); err != nil || deleted {
		t.Fatalf("delete with a finalizer: deleted=%v err=%v; want only marked", deleted, err)
	}
	if got.Metadata.Generation != 1 {
		t.Fatalf("setting finalizers moved the generation to %d", got.Metadata.Generation)
	}
	if err := s.SetFinalizers(ctx, "default", "finalize", c.Metadata.UID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "default", "finalize"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the last finalizer of a deleted cluster: %v; want not found", err)
	}
}

func testPasswords(t *testing.T, s *store.Store) {
	ctx := context.Background()
	first, err := s.EnsurePasswords(ctx, "default", "pw", "u1", "mysos", "repl")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || len(first["mysos"]) < 20 || first["mysos"] == first["repl"] {
		t.Fatalf("passwords %v; want two distinct long ones", len(first))
	}
	again, err := s.EnsurePasswords(ctx, "default", "pw", "u1", "mysos", "app")
	if err != nil {
		t.Fatal(err)
	}
	if again["mysos"] != first["mysos"] || again["repl"] != first["repl"] || again["app"] == "" {
		t.Fatal("existing passwords changed, or the new account got none")
	}
	other, err := s.EnsurePasswords(ctx, "default", "pw", "u2", "mysos")
	if err != nil {
		t.Fatal(err)
	}
	if other["mysos"] == first["mysos"] || len(other) != 1 {
		t.Fatal("a new incarnation of the name inherited the old one's passwords")
	}
}

func testEndpoints(t *testing.T, s *store.Store) {
	ctx := context.Background()
	e1, err := s.PublishEndpoints(ctx, "default", "disc", "u1", spec.Endpoints{Primary: "h1:1", Replicas: []string{"h2:2"}}, nil)
	if err != nil || e1.Epoch != 1 {
		t.Fatalf("first publication: %+v, %v; want epoch 1", e1, err)
	}
	same, _ := s.PublishEndpoints(ctx, "default", "disc", "u1", spec.Endpoints{Primary: "h1:1", Replicas: []string{"h2:2"}}, nil)
	if same.Epoch != 1 {
		t.Fatalf("unchanged endpoints moved the epoch to %d", same.Epoch)
	}
	moved, _ := s.PublishEndpoints(ctx, "default", "disc", "u1", spec.Endpoints{Primary: "h2:2"}, nil)
	if moved.Epoch != 2 || moved.Primary != "h2:2" {
		t.Fatalf("after a primary change: %+v; want epoch 2", moved)
	}
	reborn, _ := s.PublishEndpoints(ctx, "default", "disc", "u2", spec.Endpoints{Primary: "h2:2"}, nil)
	if reborn.Epoch != 3 {
		t.Fatalf("a new incarnation of the name: epoch %d; want 3, above the old one's", reborn.Epoch)
	}

	// A replica's lag is published without a new epoch; a router watching
	// the record sees the current one, then each change in order.
	withReplica := spec.Endpoints{Primary: "h2:2", Replicas: []string{"h3:3"}}
	if e, _ := s.PublishEndpoints(ctx, "default", "disc", "u2", withReplica, map[string]float64{"h3:3": 0}); e.Epoch != 4 {
		t.Fatalf("a new replica: epoch %d; want 4", e.Epoch)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	records := s.WatchDiscovery(wctx, "default", "disc")
	if first := <-records; first.Epoch != 4 || first.ReplicaLag["h3:3"] != 0 || first.UID != "u2" {
		t.Fatalf("the watch began with %+v; want epoch 4", first)
	}
	if e, _ := s.PublishEndpoints(ctx, "default", "disc", "u2", withReplica, map[string]float64{"h3:3": 7}); e.Epoch != 4 {
		t.Fatalf("a lag change moved the epoch to %d", e.Epoch)
	}
	if _, err := s.PublishEndpoints(ctx, "default", "disc", "u2", spec.Endpoints{Primary: "h3:3"}, nil); err != nil {
		t.Fatal(err)
	}
	if lagged := <-records; lagged.Epoch != 4 || lagged.ReplicaLag["h3:3"] != 7 {
		t.Fatalf("after the lag change the watch sent %+v", lagged)
	}
	if moved := <-records; moved.Epoch != 5 || moved.Primary != "h3:3" || moved.ReplicaLag != nil {
		t.Fatalf("after the primary moved the watch sent %+v", moved)
	}
	cancel()
	for range records {
	}
}

func recordEvent(t *testing.T, s *store.Store, ns, cluster, reason string, at time.Time) {
	t.Helper()
	ev := spec.Event{Namespace: ns, Cluster: cluster, Type: spec.EventNormal, Reason: reason, Time: at, Message: reason + " happened"}
	if err := s.RecordEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func reasons(evs []spec.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Reason
	}
	return out
}

func testEvents(t *testing.T, s *store.Store) {
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	// Recorded out of order: listing orders by the events' times.
	recordEvent(t, s, "ev-a", "shop", "Second", t0.Add(2*time.Second))
	recordEvent(t, s, "ev-a", "shop", "First", t0)
	recordEvent(t, s, "ev-a", "shop2", "Other", t0.Add(time.Second))
	recordEvent(t, s, "ev-b", "shop", "Elsewhere", t0.Add(3*time.Second))
	recordEvent(t, s, "ev-a", "shop", "Now", time.Time{})

	got, err := s.ListEvents(ctx, "ev-a", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if r := reasons(got); !slices.Equal(r, []string{"First", "Second", "Now"}) {
		t.Fatalf("events of ev-a/shop: %v; want First, Second, Now (not shop2's)", r)
	}
	if now := got[2].Time; now.Location() != time.UTC || time.Since(now) > time.Minute || now.Nanosecond() == 0 && now.Second() == 0 {
		t.Fatalf("an event without a time got %v; want now, UTC, to the sub-second", now)
	}
	if got[0].Namespace != "ev-a" || got[0].Cluster != "shop" || got[0].Message != "First happened" {
		t.Fatalf("read back %+v", got[0])
	}
	if got, _ := s.ListEvents(ctx, "ev-a", ""); !slices.Equal(reasons(got), []string{"First", "Other", "Second", "Now"}) {
		t.Fatalf("events of namespace ev-a: %v; want both clusters' merged by time", reasons(got))
	}
	// A namespace whose name prefixes another must not see the other's events.
	if got, _ := s.ListEvents(ctx, "ev", ""); len(got) != 0 {
		t.Fatalf("namespace \"ev\" sees %v", reasons(got))
	}
	all, err := s.ListEvents(ctx, "", "")
	if err != nil || len(all) < 5 {
		t.Fatalf("every event: %d, %v", len(all), err)
	}
	if !slices.IsSortedFunc(all, func(a, b spec.Event) int { return a.Time.Compare(b.Time) }) {
		t.Fatalf("every event is not oldest first: %v", reasons(all))
	}
	if err := s.RecordEvent(ctx, spec.Event{Cluster: "shop", Reason: "X"}); err == nil {
		t.Fatal("an event without a namespace was recorded")
	}
	if _, err := s.ListEvents(ctx, "", "shop"); err == nil {
		t.Fatal("listing a cluster's events without its namespace did not fail")
	}
}

func testEventsBounded(t *testing.T, s *store.Store) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	const extra = 5
	for i := range store.MaxEventsPerCluster + extra {
		recordEvent(t, s, "ev-bound", "db", fmt.Sprint(i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	recordEvent(t, s, "ev-bound", "db-other", "kept", t0)
	got, err := s.ListEvents(context.Background(), "ev-bound", "db")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != store.MaxEventsPerCluster || got[0].Reason != fmt.Sprint(extra) || got[len(got)-1].Reason != fmt.Sprint(store.MaxEventsPerCluster+extra-1) {
		t.Fatalf("%d events from %s to %s; want the newest %d", len(got), got[0].Reason, got[len(got)-1].Reason, store.MaxEventsPerCluster)
	}
	if other, _ := s.ListEvents(context.Background(), "ev-bound", "db-other"); len(other) != 1 {
		t.Fatal("trimming one cluster's events touched another's")
	}
}

func testEventsDeleted(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, name := range []string{"evdel", "evdel2"} {
		if _, err := s.Create(ctx, newCluster(name, 1)); err != nil {
			t.Fatal(err)
		}
		recordEvent(t, s, "default", name, "Created", time.Time{})
	}
	if _, deleted, err := s.Delete(ctx, "default", "evdel", ""); err != nil || !deleted {
		t.Fatalf("delete: deleted=%v err=%v", deleted, err)
	}
	if got, _ := s.ListEvents(ctx, "default", "evdel"); len(got) != 0 {
		t.Fatalf("events of a deleted cluster survived: %v", reasons(got))
	}
	if got, _ := s.ListEvents(ctx, "default", "evdel2"); len(got) != 1 {
		t.Fatal("deleting evdel took evdel2's events")
	}

	// The last finalizer's removal completes a deletion, events included.
	c := newCluster("evfin", 1)
	c.Metadata.Finalizers = []string{"mysos.io/tasks"}
	created, err := s.Create(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	recordEvent(t, s, "default", "evfin", "Created", time.Time{})
	if _, _, err := s.Delete(ctx, "default", "evfin", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListEvents(ctx, "default", "evfin"); len(got) != 1 {
		t.Fatal("marking a cluster for deletion dropped its events")
	}
	if err := s.SetFinalizers(ctx, "default", "evfin", created.Metadata.UID, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListEvents(ctx, "default", "evfin"); len(got) != 0 {
		t.Fatalf("events survived the last finalizer: %v", reasons(got))
	}

	// An event written late for a deleted incarnation does not attach to
	// the next one.
	recordEvent(t, s, "default", "evnew", "Stale", time.Time{})
	if _, err := s.Create(ctx, newCluster("evnew", 1)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ListEvents(ctx, "default", "evnew"); len(got) != 0 {
		t.Fatalf("a new cluster inherited %v", reasons(got))
	}
}

// ReadCluster returns in one read what the separate reads return;
// UpdateStatusFrom writes nothing when nothing changed, writes a change,
// applies its change on top of a status somebody wrote since the read, and
// is not fooled by a caller that changed the state's cluster in memory.
func testReadCluster(t *testing.T, s *store.Store) {
	ctx := context.Background()
	created, err := s.Create(ctx, newCluster("state", 3))
	if err != nil {
		t.Fatal(err)
	}
	uid := created.Metadata.UID
	for _, o := range []int{1, 0} {
		if err := s.PutInstance(ctx, &store.Instance{Namespace: "default", Cluster: "state", ClusterUID: uid, Ordinal: o, Phase: store.InstancePending}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutBackupJob(ctx, &store.BackupJob{Namespace: "default", Cluster: "state", ClusterUID: uid, ID: "b1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutArchiver(ctx, &store.Archiver{Namespace: "default", Cluster: "state", ClusterUID: uid, Phase: store.InstancePending}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateStatus(ctx, "default", "state", uid, func(st *spec.ClusterStatus) error { st.Phase = spec.PhaseCreating; return nil }); err != nil {
		t.Fatal(err)
	}
	st, err := s.ReadCluster(ctx, "default", "state")
	if err != nil {
		t.Fatal(err)
	}
	insts, _ := s.ListInstances(ctx, "default", "state")
	jobs, _ := s.ListBackupJobs(ctx, "default", "state")
	arch, _ := s.GetArchiver(ctx, "default", "state")
	got, _ := s.Get(ctx, "default", "state")
	if !spec.SameJSON(st.Cluster, got) || !spec.SameJSON(st.Instances, insts) || !spec.SameJSON(st.BackupJobs, jobs) || !spec.SameJSON(st.Archiver, arch) {
		t.Fatalf("ReadCluster differs from the separate reads:\n%+v\n%+v %+v %+v %+v", st, got, insts, jobs, arch)
	}
	if _, err := s.ReadCluster(ctx, "default", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadCluster of a missing cluster: %v", err)
	}

	rev := func() string {
		c, _ := s.Get(ctx, "default", "state")
		return string(c.Status.Phase) + "@" + statusRevision(t, s, c)
	}
	before := rev()
	st.Cluster.Status.Phase = spec.PhaseRunning // in memory only: the write must still see Creating stored
	if _, err := s.UpdateStatusFrom(ctx, st, func(cs *spec.ClusterStatus) error { cs.Phase = spec.PhaseCreating; return nil }); err != nil {
		t.Fatal(err)
	}
	if after := rev(); after != before {
		t.Fatalf("an unchanged status was written: %s -> %s", before, after)
	}
	if _, err := s.UpdateStatusFrom(ctx, st, func(cs *spec.ClusterStatus) error { cs.Phase = spec.PhaseRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Get(ctx, "default", "state"); c.Status.Phase != spec.PhaseRunning {
		t.Fatalf("phase %q after UpdateStatusFrom; want Running", c.Status.Phase)
	}
	// st is stale now: the write is retried on the stored status.
	if _, err := s.UpdateStatusFrom(ctx, st, func(cs *spec.ClusterStatus) error { cs.ReadyReplicas = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Get(ctx, "default", "state"); c.Status.Phase != spec.PhaseRunning || c.Status.ReadyReplicas != 2 {
		t.Fatalf("status %+v; want Running (written since the read) and 2 ready", c.Status)
	}
}

// statusRevision is the status key's mod revision, read through List's
// resourceVersion of the whole list: any status write moves it.
func statusRevision(t *testing.T, s *store.Store, c *spec.MySQLCluster) string {
	t.Helper()
	_, rev, err := s.List(context.Background(), c.Metadata.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(rev, 10)
}

// testUnchanged: a create or update conditioned on the clusters a check
// read (store.Unchanged) fails with ErrRaced once another cluster of that
// namespace was created or changed after the read, and only then; a
// stale resourceVersion is still a conflict, not a race.
func testUnchanged(t *testing.T, s *store.Store) {
	ctx := context.Background()
	in := func(ns, name string) *spec.MySQLCluster {
		c := newCluster(name, 1)
		c.Metadata.Namespace = ns
		return c
	}
	a, err := s.Create(ctx, in("race-a", "one"))
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := s.Create(ctx, in("race-a", "doomed"))
	if err != nil {
		t.Fatal(err)
	}
	_, rev, err := s.List(ctx, "race-a")
	if err != nil {
		t.Fatal(err)
	}
	read := store.Unchanged{Namespace: "race-a", Rev: rev}
	// A deletion after the read frees what the check counted: no race.
	if _, _, err := s.Delete(ctx, "race-a", "doomed", doomed.Metadata.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, in("race-a", "two"), read); err != nil {
		t.Fatalf("create with nothing created or changed since the read: %v", err)
	}
	// "two" was created after the read: a second apply checked against the
	// same read raced it.
	if _, err := s.Create(ctx, in("race-a", "three"), read); !errors.Is(err, store.ErrRaced) {
		t.Fatalf("create raced by another: err = %v, want ErrRaced", err)
	}
	if _, err := s.Create(ctx, in("race-a", "one"), read); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("create of an existing name: err = %v, want ErrAlreadyExists", err)
	}
	grown, three := in("race-a", "one"), int32(3)
	grown.Spec.Replicas = &three
	if _, _, err := s.Update(ctx, grown, a.Metadata.ResourceVersion, read); !errors.Is(err, store.ErrRaced) {
		t.Fatalf("update raced by another: err = %v, want ErrRaced", err)
	}
	if _, _, err := s.Update(ctx, grown, "1", read); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update with a stale resourceVersion: err = %v, want ErrConflict", err)
	}
	// Another namespace's change is no race for a check of race-a, nor is
	// this namespace's for race-b's; "" covers every namespace.
	if _, err := s.Create(ctx, in("race-b", "one"), store.Unchanged{Namespace: "race-b", Rev: rev}); err != nil {
		t.Fatalf("create in a namespace nothing changed in: %v", err)
	}
	_, now, err := s.List(ctx, "race-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Update(ctx, grown, a.Metadata.ResourceVersion, store.Unchanged{Namespace: "race-a", Rev: now}); err != nil {
		t.Fatalf("update checked against a fresh read: %v", err)
	}
	if _, err := s.Create(ctx, in("race-c", "one"), store.Unchanged{Rev: now}); !errors.Is(err, store.ErrRaced) {
		t.Fatalf("create checked against every namespace after race-b changed: err = %v, want ErrRaced", err)
	}
	// Namespace "race" is not a prefix of "race-a": race-a's changes are
	// no race for it.
	if _, err := s.Create(ctx, in("race", "one"), store.Unchanged{Namespace: "race", Rev: rev}); err != nil {
		t.Fatalf("create in a namespace whose name prefixes a changed one: %v", err)
	}
}

// testRouterPortClaims: a router port is held by the cluster whose spec
// names it, from the write that names it until the one that stops naming
// it or deletes the cluster (after its finalizers), in any namespace.
func testRouterPortClaims(t *testing.T, s *store.Store) {
	ctx := context.Background()
	routed := func(ns, name string, ports ...int32) *spec.MySQLCluster {
		c := newCluster(name, 1)
		c.Metadata.Namespace = ns
		c.Spec.Router = &spec.RouterSpec{ReadWritePort: ports[0]}
		if len(ports) > 1 {
			c.Spec.Router.ReadOnlyPort = ports[1]
		}
		return c
	}
	taken := func(err error, port int32, owner string) {
		t.Helper()
		var pt *store.PortTakenError
		if !errors.As(err, &pt) || pt.Port != port || pt.Namespace+"/"+pt.Owner != owner {
			t.Fatalf("err = %v; want port %d taken by %s", err, port, owner)
		}
	}
	a, err := s.Create(ctx, routed("ports-a", "a", 17446, 17447))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, routed("ports-b", "b", 17447))
	taken(err, 17447, "ports-a/a")
	if _, err := s.Get(ctx, "ports-b", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a create refused for its port was stored: %v", err)
	}
	// a moves its read-only port: 17447 is free, 17448 is a's.
	a, _, err = s.Update(ctx, routed("ports-a", "a", 17446, 17448), a.Metadata.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, routed("ports-b", "b", 17447))
	if err != nil {
		t.Fatalf("a port released by an update: %v", err)
	}
	_, _, err = s.Update(ctx, routed("ports-b", "b", 17447, 17448), b.Metadata.ResourceVersion)
	taken(err, 17448, "ports-a/a")
	// Deleted with a finalizer: the port is held until the last one goes.
	if err := s.SetFinalizers(ctx, "ports-a", "a", a.Metadata.UID, []string{"mysos.io/test"}); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err := s.Delete(ctx, "ports-a", "a", ""); err != nil || deleted {
		t.Fatalf("delete with a finalizer: deleted=%v err=%v", deleted, err)
	}
	_, err = s.Create(ctx, routed("ports-c", "c", 17446))
	taken(err, 17446, "ports-a/a")
	if err := s.SetFinalizers(ctx, "ports-a", "a", a.Metadata.UID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, routed("ports-c", "c", 17446, 17448)); err != nil {
		t.Fatalf("ports of a deleted cluster: %v", err)
	}

	// Claims left behind by specs deleted or written past the store are
	// released when a write finds them (reported raced, so the caller
	// writes again); a real claim is not.
	raw := s.Client()
	if _, err := raw.Delete(ctx, "/mysos-test/clusters/ports-c/c"); err != nil { // as etcdctl del would
		t.Fatal(err)
	}
	if _, err := raw.Put(ctx, "/mysos-test/routerports/17449", "ports-d/d"); err != nil { // its own, left over
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, routed("ports-d", "d", 17446, 17449)); !errors.Is(err, store.ErrRaced) {
		t.Fatalf("create meeting a claim whose owner is gone: err = %v, want ErrRaced (claim released)", err)
	}
	if _, err := s.Create(ctx, routed("ports-d", "d", 17446, 17449)); !errors.Is(err, store.ErrRaced) {
		t.Fatalf("create meeting its own left-over claim: err = %v, want ErrRaced (claim released)", err)
	}
	d, err := s.Create(ctx, routed("ports-d", "d", 17446, 17449))
	if err != nil {
		t.Fatalf("create once the left-over claims are gone: %v", err)
	}
	_, err = s.Create(ctx, routed("ports-e", "e", 17449))
	taken(err, 17449, "ports-d/d")
	// A held port whose claim is missing (a spec stored before claims, or
	// a claim cleared by hand) is claimed again by the next update.
	if _, err := raw.Delete(ctx, "/mysos-test/routerports/17449"); err != nil {
		t.Fatal(err)
	}
	more := routed("ports-d", "d", 17446, 17449)
	more.Spec.Failover.Automatic = new(bool)
	if _, _, err := s.Update(ctx, more, d.Metadata.ResourceVersion); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, routed("ports-e", "e", 17449))
	taken(err, 17449, "ports-d/d")
}
