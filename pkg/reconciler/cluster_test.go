package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newCluster(replicas int32, generation int64) *spec.MySQLCluster {
	c := &spec.MySQLCluster{
		APIVersion: spec.APIVersion, Kind: spec.Kind,
		Metadata: spec.ObjectMeta{Name: "shop", Namespace: "default", UID: "u1", Generation: generation},
		Spec: spec.ClusterSpec{Replicas: &replicas, Resources: spec.Resources{
			CPUs: spec.MustParseQuantity("500m"), Memory: spec.MustParseQuantity("512Mi"), Disk: spec.MustParseQuantity("1Gi")}},
	}
	spec.SetDefaults(c)
	return c
}

// rig is a reconciler over fakes with a clock the test moves.
type rig struct {
	t     *testing.T
	store *fakeStore
	mesos *fakeMesos
	r     *ClusterReconciler
	clock time.Time
	// metrics, when set, is the registry r's backup metrics live in.
	metrics *metrics.Registry
}

func newRig(t *testing.T, c *spec.MySQLCluster, subscribed bool) *rig {
	g := &rig{t: t, store: newFakeStore(c), mesos: &fakeMesos{ok: subscribed, reason: "no --master"}, clock: t0}
	g.r = &ClusterReconciler{Store: g.store, Mesos: g.mesos, Role: spec.DefaultRole, Now: func() time.Time { return g.clock },
		Log: slog.New(slog.DiscardHandler)}
	return g
}

// settle reconciles until a pass does nothing more, and returns the last result.
func (g *rig) settle() Result {
	g.t.Helper()
	for range 100 {
		res, err := g.r.Reconcile(context.Background(), "default/shop")
		if err != nil {
			g.t.Fatal(err)
		}
		if !res.Requeue {
			return res
		}
	}
	g.t.Fatal("the reconciler never settled: it acts on every pass")
	return Result{}
}

func (g *rig) cluster() *spec.MySQLCluster { return g.store.clusters["default/shop"] }

func (g *rig) run(key string, state mesos.TaskState) {
	inst := g.store.instance(key)
	g.mesos.setTask(framework.Task{ID: inst.TaskID, AgentID: inst.AgentID, State: state, Reason: "REASON_TEST", Message: "set by the test"})
}

// launchAll stands in for the launcher: every Pending instance gets a task
// on agent a<ordinal> (or stays on its own agent).
func (g *rig) launchAll() {
	for _, inst := range g.store.instances {
		if inst.Phase != store.InstancePending {
			continue
		}
		if inst.AgentID == "" {
			inst.AgentID, inst.Hostname, inst.PersistenceID, inst.Port = fmt.Sprintf("a%d", inst.Ordinal), fmt.Sprintf("h%d", inst.Ordinal), fmt.Sprintf("v%d", inst.Ordinal), 31000
		}
		inst.Launches++
		inst.Phase = store.InstanceLaunched
		inst.TaskID = fmt.Sprintf("default.shop.%d.%d-x", inst.Ordinal, inst.Launches)
		inst.Since = g.clock
		g.mesos.setTask(framework.Task{ID: inst.TaskID, AgentID: inst.AgentID, State: mesos.TASK_RUNNING})
	}
}

func TestReconcileWithoutMesosOnlyReports(t *testing.T) {
	g := newRig(t, newCluster(3, 2), false)
	res := g.settle()
	if res.RequeueAfter <= 0 {
		t.Fatal("no periodic resync requested")
	}
	c := g.cluster()
	if len(c.Metadata.Finalizers) != 0 || len(g.store.instances) != 0 {
		t.Fatalf("finalizers %v and %d records without Mesos; want none, so that deletion is immediate",
			c.Metadata.Finalizers, len(g.store.instances))
	}
	st := c.Status
	if st.Phase != spec.PhasePending || st.ObservedGeneration != 2 {
		t.Fatalf("phase %q observedGeneration %d; want Pending and 2", st.Phase, st.ObservedGeneration)
	}
	ready := st.FindCondition(spec.ConditionReady)
	if ready == nil || ready.Status != spec.ConditionFalse || ready.Reason != ReasonMesosUnavailable || ready.ObservedGeneration != 2 {
		t.Fatalf("Ready condition %+v; want False/MesosUnavailable at generation 2", ready)
	}
}

func TestReconcileReachesRunningAndIsIdempotent(t *testing.T) {
	g := newRig(t, newCluster(3, 1), true)
	g.settle()
	if g.mesos.revives == 0 {
		t.Fatal("new pending instances did not revive offers")
	}
	if got := g.cluster().Status.Phase; got != spec.PhaseCreating {
		t.Fatalf("phase %q before any launch; want Creating", got)
	}
	g.launchAll()
	g.settle()
	st := g.cluster().Status
	if st.Phase != spec.PhaseRunning || st.ReadyReplicas != 3 || len(st.Instances) != 3 {
		t.Fatalf("status %+v; want Running with 3 ready instances", st)
	}
	if st.Instances[1].Name != "shop-1" || st.Instances[1].State != "TASK_RUNNING" || st.Instances[1].Volume != "v1" || st.Instances[1].Port != 31000 {
		t.Fatalf("instance status %+v", st.Instances[1])
	}
	writes := g.store.statusWrites
	for range 3 {
		g.clock = g.clock.Add(time.Minute)
		g.settle()
	}
	if g.store.statusWrites != writes {
		t.Fatalf("%d status writes for an unchanged world; want none", g.store.statusWrites-writes)
	}
}

func TestFailedTaskIsRelaunchedOnItsOwnAgent(t *testing.T) {
	g := newRig(t, newCluster(3, 1), true)
	g.settle()
	g.launchAll()
	g.settle()
	g.run("default/shop/1", mesos.TASK_FAILED)
	g.settle()
	inst := g.store.instance("default/shop/1")
	if inst.Phase != store.InstancePending || inst.AgentID != "a1" || inst.PersistenceID != "v1" || inst.Port != 31000 {
		t.Fatalf("after TASK_FAILED: %+v; want Pending, pinned to a1 with volume v1", inst)
	}
	if st := g.cluster().Status; st.Phase != spec.PhaseDegraded {
		t.Fatalf("phase %q; a cluster that ran and lost an instance is Degraded", st.Phase)
	}
	// No offer from a1 for longer than the relaunch timeout: move.
	g.clock = g.clock.Add(DefaultRelaunchTimeout + time.Second)
	g.settle()
	inst = g.store.instance("default/shop/1")
	if inst.Phase != store.InstancePending || inst.AgentID != "" || inst.PersistenceID != "" {
		t.Fatalf("after the relaunch timeout: %+v; want Pending anywhere with a fresh volume", inst)
	}
}

func TestScaleDownReleasesHighestOrdinals(t *testing.T) {
	g := newRig(t, newCluster(5, 1), true)
	g.settle()
	g.launchAll()
	g.settle()
	*g.cluster().Spec.Replicas = 2
	g.settle()
	for ord := range 5 {
		inst := g.store.instance(fmt.Sprintf("default/shop/%d", ord))
		if want := ord >= 2; (inst.Phase == store.InstanceReleasing) != want {
			t.Errorf("shop-%d phase %s; releasing wanted: %v", ord, inst.Phase, want)
		}
	}
	slices.Sort(g.mesos.kills)
	if want := []string{"default.shop.2.1-x", "default.shop.3.1-x", "default.shop.4.1-x"}; !slices.Equal(g.mesos.kills, want) {
		t.Fatalf("kills %v; want %v", g.mesos.kills, want)
	}
	// Kills are not repeated while Mesos has not answered.
	g.settle()
	if len(g.mesos.kills) != 3 {
		t.Fatalf("%d kills; a kill in flight must not be resent at once", len(g.mesos.kills))
	}
	if st := g.cluster().Status; st.Phase != spec.PhaseDegraded && st.Phase != spec.PhaseRunning {
		t.Fatalf("phase %q while scaling down", st.Phase)
	}
}

func TestDeletionWaitsForReleaseThenRemovesFinalizer(t *testing.T) {
	g := newRig(t, newCluster(2, 1), true)
	g.settle()
	g.launchAll()
	g.settle()
	now := t0
	g.cluster().Metadata.DeletionTimestamp = &now
	g.settle()
	if len(g.mesos.kills) != 2 {
		t.Fatalf("kills %v; want both tasks", g.mesos.kills)
	}
	if g.cluster() == nil || g.cluster().Status.Phase != spec.PhaseDeleting {
		t.Fatal("the cluster must stay, Deleting, until its resources are released")
	}
	// Tasks die; the launcher releases the volumes and drops the records.
	g.run("default/shop/0", mesos.TASK_KILLED)
	g.run("default/shop/1", mesos.TASK_KILLED)
	g.settle()
	if g.cluster() == nil {
		t.Fatal("the cluster went before its volumes were released")
	}
	g.store.instances = map[string]*store.Instance{}
	g.settle()
	if _, ok := g.store.clusters["default/shop"]; ok {
		t.Fatal("the cluster's keys remain after every instance was released")
	}
}

func TestUnmentionedTaskIsReconciledExplicitly(t *testing.T) {
	g := newRig(t, newCluster(1, 1), true)
	g.settle()
	g.launchAll()
	g.mesos.tasks = nil // a restarted scheduler: Mesos has said nothing yet
	g.settle()
	if len(g.mesos.asked) != 0 {
		t.Fatal("asked Mesos before the grace period")
	}
	g.clock = g.clock.Add(unknownTaskGrace + time.Second)
	g.settle()
	if !slices.Equal(g.mesos.asked, []string{"default.shop.0.1-x"}) {
		t.Fatalf("explicit reconciliation asked for %v", g.mesos.asked)
	}
}

func TestOrphanTasksOfADeletedClusterAreKilled(t *testing.T) {
	g := newRig(t, newCluster(1, 1), true)
	delete(g.store.clusters, "default/shop")
	g.mesos.setTask(framework.Task{ID: "default.shop.0.1-x", AgentID: "a0", State: mesos.TASK_RUNNING})
	g.mesos.setTask(framework.Task{ID: "default.shop.1.1-x", AgentID: "a1", State: mesos.TASK_FINISHED})
	g.mesos.setTask(framework.Task{ID: "default.shopping.0.1-x", AgentID: "a1", State: mesos.TASK_RUNNING})
	g.settle()
	if !slices.Equal(g.mesos.kills, []string{"default.shop.0.1-x"}) {
		t.Fatalf("kills %v; want only the running task of the deleted cluster", g.mesos.kills)
	}
	if _, err := g.r.Reconcile(context.Background(), "no-slash"); err == nil {
		t.Fatal("a malformed key was accepted")
	}
}

func TestForeignRoleIsReportedNotLaunched(t *testing.T) {
	c := newCluster(3, 1)
	c.Spec.Placement.Role = "analytics"
	g := newRig(t, c, true)
	g.settle()
	if len(g.store.instances) != 0 {
		t.Fatalf("%d instances created for a role this scheduler does not serve", len(g.store.instances))
	}
	ready := g.cluster().Status.FindCondition(spec.ConditionReady)
	if ready == nil || ready.Reason != ReasonRoleNotServed {
		t.Fatalf("Ready %+v; want reason %s", ready, ReasonRoleNotServed)
	}
}

func TestConditionTransitionTimeMovesOnlyOnStatusChange(t *testing.T) {
	g := newRig(t, newCluster(1, 1), false)
	g.settle()
	g.clock = t0.Add(time.Hour)
	g.mesos.ok = true
	g.settle()
	c := g.cluster().Status.FindCondition(spec.ConditionReady)
	if c.Reason != ReasonInstancesPending || !c.LastTransitionTime.Equal(t0) {
		t.Fatalf("reason changed but status did not: %+v; lastTransitionTime must stay %v", c, t0)
	}
}

func TestCrashLoopBacksOffAndGoneAgentMoves(t *testing.T) {
	g := newRig(t, newCluster(2, 1), true)
	g.settle()
	g.launchAll()
	g.settle()
	var waits []time.Duration
	for range 3 { // each task dies at once
		g.run("default/shop/0", mesos.TASK_FAILED)
		g.settle()
		inst := g.store.instance("default/shop/0")
		waits = append(waits, inst.NotBefore.Sub(g.clock))
		g.launchAll()
		g.settle()
	}
	if !slices.Equal(waits, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}) {
		t.Fatalf("backoffs %v; want 2s, 4s, 8s", waits)
	}
	// A task that ran a while resets the count.
	g.clock = g.clock.Add(2 * quickFailure)
	g.run("default/shop/0", mesos.TASK_FAILED)
	g.settle()
	if inst := g.store.instance("default/shop/0"); inst.QuickFailures != 0 || !inst.NotBefore.IsZero() {
		t.Fatalf("after a long run: %+v; want no backoff", inst)
	}
	g.run("default/shop/1", mesos.TASK_GONE_BY_OPERATOR)
	g.settle()
	if inst := g.store.instance("default/shop/1"); inst.Phase != store.InstancePending || inst.AgentID != "" || inst.PersistenceID != "" {
		t.Fatalf("after its agent was marked gone: %+v; want Pending anywhere with a fresh volume", inst)
	}
}
