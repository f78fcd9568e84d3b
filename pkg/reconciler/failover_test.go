package reconciler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// addr is where the rig's launchAll puts an instance's mysqld.
func addr(ordinal int) string { return fmt.Sprintf("h%d:31000", ordinal) }

// newFailoverRig is a running 3-instance cluster on fake mysqld servers:
// shop-0 the writable primary, shop-1 and shop-2 replicating from it.
func newFailoverRig(t *testing.T) (*rig, *fakeMySQL) {
	t.Helper()
	g := newRig(t, newCluster(3, 1), true)
	db := newFakeMySQL()
	g.r.Servers = db
	g.settle()
	g.launchAll()
	for i := range 3 {
		db.server(addr(i)) // boot in ordinal order: shop-0 has server id 1
	}
	g.converge(db)
	if st := g.cluster().Status; st.CurrentPrimary != "shop-0" || st.Phase != spec.PhaseRunning {
		t.Fatalf("status %+v; want Running with primary shop-0", st)
	}
	return g, db
}

// converge reconciles and replicates until neither has anything to do.
func (g *rig) converge(db *fakeMySQL) {
	g.t.Helper()
	for range 20 {
		g.settle()
		db.pump()
		if g.settle(); g.cluster().Status.Operation == nil && !g.actsNow() {
			return
		}
	}
}

// actsNow reports whether one more pass would act.
func (g *rig) actsNow() bool {
	g.t.Helper()
	res, err := g.r.Reconcile(context.Background(), "default/shop")
	if err != nil {
		g.t.Fatal(err)
	}
	return res.Requeue
}

func (g *rig) failTask(ordinal int, state mesos.TaskState) {
	g.run(fmt.Sprintf("default/shop/%d", ordinal), state)
}

// eventReasons are the reasons of the events recorded, lifecycle events
// (creation, instances created and released) aside.
func (g *rig) eventReasons() []string {
	var out []string
	for _, ev := range g.store.events {
		if !slices.Contains(slices.Collect(maps.Values(lifecycleEvents)), ev.Reason) {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// checkOnePrimary: exactly one writable server, the recorded primary, and
// every other running one replicates from it.
func checkOnePrimary(t *testing.T, g *rig, db *fakeMySQL, want string) {
	t.Helper()
	st := g.cluster().Status
	if st.CurrentPrimary != want || st.Operation != nil {
		t.Fatalf("primary %q, operation %+v; want %s and none", st.CurrentPrimary, st.Operation, want)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	for a, s := range db.servers {
		isPrimary := a == addr(int(want[len(want)-1]-'0'))
		if !s.down && s.readOnly == isPrimary {
			t.Fatalf("%s: read-only %v; only the primary %s may be writable", a, s.readOnly, want)
		}
	}
}

func TestFailoverPromotesTheReplicaWithEveryTransaction(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 5)
	// shop-2 fetched two more transactions than shop-1 and has not
	// applied them yet: they were acknowledged, so they must survive.
	mustWrite(t, db, addr(0), 2)
	db.server(addr(2)).stuck = true
	db.pump(addr(2))
	db.server(addr(2)).stuck = false
	db.server(addr(0)).down = true
	g.failTask(0, mesos.TASK_FAILED)

	g.converge(db)
	checkOnePrimary(t, g, db, "shop-2")
	st := g.cluster().Status
	if st.LastFailover == nil || st.LastFailover.From != "shop-0" || st.LastFailover.To != "shop-2" {
		t.Fatalf("lastFailover %+v; want shop-0 → shop-2", st.LastFailover)
	}
	if got := lastSeq(db.server(addr(2)).binlog); got != 7 {
		t.Fatalf("the new primary applied up to %d; want all 7 transactions", got)
	}
	if s := db.server(addr(1)); s.source != addr(2) || s.io != "Yes" || lastSeq(s.binlog) != 7 {
		t.Fatalf("shop-1 replicates from %q (io %s) up to %d; want %s, Yes, 7", s.source, s.io, lastSeq(s.binlog), addr(2))
	}
	if !db.server(addr(2)).semiSync {
		t.Fatal("the new primary opened to writes without semi-sync")
	}
	want := []string{"FailoverStarted", "Fenced", "CandidateChosen", "Promoted", "FailoverCompleted"}
	if got := g.eventReasons(); !slices.Equal(got, want) {
		t.Fatalf("events %v; want %v", got, want)
	}
	for _, ev := range g.store.events {
		if ev.Operation != st.LastFailover.ID && slices.Contains(want, ev.Reason) {
			t.Fatalf("event %+v is not tied to operation %s", ev, st.LastFailover.ID)
		}
	}
	if e := g.store.endpoints["default/shop"]; e.Primary != addr(2) {
		t.Fatalf("published endpoints %+v; want the primary %s", e, addr(2))
	}
}

func TestFailoverWaitsForEnoughReplicas(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	db.server(addr(0)).down = true
	db.server(addr(1)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	op := g.cluster().Status.Operation
	if op == nil || op.Step != spec.StepElecting || op.Blocked == "" || g.cluster().Status.CurrentPrimary != "shop-0" {
		t.Fatalf("operation %+v; want a failover blocked while choosing: with one of two replicas, an acknowledged write may be on the other", op)
	}
	if db.server(addr(2)).readOnly == false {
		t.Fatal("shop-2 was made writable while the failover is blocked")
	}
	db.server(addr(1)).restart()
	g.converge(db)
	if p := g.cluster().Status.CurrentPrimary; p == "shop-0" {
		t.Fatal("the failover did not resume once both replicas answered")
	}
}

func TestFailoverRefusesDivergedReplicas(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	// shop-1 got a write of its own: neither replica contains the other.
	s1 := db.server(addr(1))
	s1.binlog = append(s1.binlog, txn{s1.id, 4})
	s1.relay = slices.Clone(s1.binlog)
	mustWrite(t, db, addr(0), 1)
	db.pump(addr(2))
	db.server(addr(0)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	op := g.cluster().Status.Operation
	if op == nil || op.Blocked == "" || g.cluster().Status.CurrentPrimary != "shop-0" {
		t.Fatalf("operation %+v; want the failover blocked on diverged replicas", op)
	}
	if got := g.eventReasons(); !slices.Contains(got, "FailoverBlocked") {
		t.Fatalf("events %v; want FailoverBlocked", got)
	}
}

func TestFailedPrimaryBackBeforePromotionStaysPrimary(t *testing.T) {
	g, db := newFailoverRig(t)
	db.server(addr(0)).down = true
	db.server(addr(1)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	if op := g.cluster().Status.Operation; op == nil || op.Blocked == "" {
		t.Fatalf("operation %+v; want a blocked failover", op)
	}
	// The relaunched primary boots read-only with all its data.
	g.launchAll()
	s0 := db.server(addr(0))
	s0.restart()
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-0")
	if got := g.eventReasons(); !slices.Contains(got, "FailoverAborted") {
		t.Fatalf("events %v; want FailoverAborted", got)
	}
	if s := db.server(addr(2)); s.source != addr(0) || s.io != "Yes" {
		t.Fatalf("shop-2 replicates from %q io %s; want it fetching from shop-0 again", s.source, s.io)
	}
}

func TestOldPrimaryRejoinsOrIsMarkedErrant(t *testing.T) {
	for _, errant := range []bool{false, true} {
		t.Run(fmt.Sprintf("errant=%v", errant), func(t *testing.T) {
			g, db := newFailoverRig(t)
			writeAndReplicate(t, db, 3)
			s0 := db.server(addr(0))
			if errant { // committed, never fetched by a replica, never acknowledged
				s0.binlog = append(s0.binlog, txn{s0.id, 4})
			}
			s0.down = true
			g.failTask(0, mesos.TASK_FAILED)
			g.converge(db)
			newPrimary := g.cluster().Status.CurrentPrimary
			if newPrimary == "shop-0" {
				t.Fatal("no failover")
			}
			mustWrite(t, db, addr(int(newPrimary[5]-'0')), 2)
			g.launchAll()
			s0.restart()
			g.converge(db)
			g.converge(db)
			rec := g.store.instance("default/shop/0")
			st := g.cluster().Status
			if !errant {
				if rec.Errant != "" || s0.source == "" || s0.io != "Yes" || !s0.readOnly || lastSeq(s0.binlog) != 5 {
					t.Fatalf("old primary errant %q source %q io %s seq %d; want a read-only replica with all 5", rec.Errant, s0.source, s0.io, lastSeq(s0.binlog))
				}
				return
			}
			if rec.Errant == "" || !slices.Equal(st.ErrantInstances, []string{"shop-0"}) || !s0.readOnly {
				t.Fatalf("record errant %q, status errant %v, read-only %v; want shop-0 marked errant and read-only", rec.Errant, st.ErrantInstances, s0.readOnly)
			}
			if ready := st.FindCondition(spec.ConditionReady); ready.Status != spec.ConditionFalse {
				t.Fatalf("Ready %+v with an errant instance", ready)
			}
			for _, e := range g.store.endpoints["default/shop"].Replicas {
				if e == addr(0) {
					t.Fatal("the errant instance is published as a replica")
				}
			}
			// Re-seeding, when a user asks for it (mysosctl reseed),
			// releases the instance; the request is dropped once done.
			g.store.clusters["default/shop"].Status.ReseedRequested = []string{"shop-0"}
			g.settle()
			if rec := g.store.instance("default/shop/0"); rec == nil || rec.Phase != store.InstanceReleasing {
				t.Fatalf("record %+v; want the errant instance released for a fresh seed", rec)
			}
			g.mesos.setTask(framework.Task{ID: rec.TaskID, AgentID: rec.AgentID, State: mesos.TASK_KILLED})
			for range 5 {
				g.settle()
				if r := g.store.instance("default/shop/0"); r != nil && r.Phase == store.InstanceReleasing && r.TaskID != "" {
					// the launcher gives the volume back; here the record goes
					r.AgentID = ""
				}
			}
			if rec := g.store.instance("default/shop/0"); rec == nil || rec.Errant != "" || rec.Phase != store.InstancePending {
				t.Fatalf("record %+v; want a fresh, clean, pending shop-0", rec)
			}
			if got := g.cluster().Status.ReseedRequested; len(got) != 0 {
				t.Fatalf("reseedRequested %v after the re-seed; want it dropped", got)
			}
		})
	}
}

func TestAntiFlappingHoldsASecondFailover(t *testing.T) {
	g, db := newFailoverRig(t)
	db.server(addr(0)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	first := g.cluster().Status.CurrentPrimary
	if first == "shop-0" {
		t.Fatal("no first failover")
	}
	// The old primary rejoins, so the second failover has its quorum.
	g.launchAll()
	db.server(addr(0)).restart()
	g.converge(db)
	g.clock = g.clock.Add(time.Minute)
	ord := int(first[5] - '0')
	db.server(addr(ord)).down = true
	g.failTask(ord, mesos.TASK_FAILED)
	g.converge(db)
	st := g.cluster().Status
	if st.CurrentPrimary != first || st.Operation != nil {
		t.Fatalf("primary %q operation %+v; want no second failover within the block window", st.CurrentPrimary, st.Operation)
	}
	if ready := st.FindCondition(spec.ConditionReady); ready.Reason != ReasonPrimaryFailed {
		t.Fatalf("Ready %+v; want reason %s saying why", ready, ReasonPrimaryFailed)
	}
	g.store.clusters["default/shop"].Status.LastFailover.Acknowledged = true
	g.converge(db)
	if p := g.cluster().Status.CurrentPrimary; p == first {
		t.Fatal("no failover after the acknowledgement")
	}
}

func TestUnreachablePrimaryNeedsTimeAndReplicasAgreeing(t *testing.T) {
	t.Run("ReplicasStillReceive", func(t *testing.T) {
		g, db := newFailoverRig(t)
		db.server(addr(0)).down = true // the task still runs
		g.settle()
		g.clock = g.clock.Add(time.Minute)
		g.settle() // replicas not pumped: their IO threads still say Yes
		if g.cluster().Status.Operation != nil || g.cluster().Status.CurrentPrimary != "shop-0" {
			t.Fatal("failed over while the replicas still receive from the primary")
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		g, db := newFailoverRig(t)
		db.server(addr(0)).down = true
		g.converge(db) // the replicas lose it too
		if g.cluster().Status.CurrentPrimary != "shop-0" {
			t.Fatal("failed over before spec.failover.unreachableTimeout")
		}
		g.clock = g.clock.Add(11 * time.Second)
		g.converge(db)
		if p := g.cluster().Status.CurrentPrimary; p == "shop-0" {
			t.Fatal("no failover after the timeout with every replica agreeing")
		}
		if !slices.Contains(g.mesos.kills, g.store.instance("default/shop/0").TaskID) {
			t.Fatal("the unreachable old primary's task was not killed")
		}
	})
}

func TestSwitchover(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 4)
	g.store.clusters["default/shop"].Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover,
		From: "shop-0", To: "shop-1", Step: spec.StepRequested, StartedAt: g.clock}
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-1")
	s0 := db.server(addr(0))
	if s0.kills == 0 || s0.source != addr(1) || s0.io != "Yes" {
		t.Fatalf("old primary: %d connection kills, source %q io %s; want clients disconnected and it replicating from shop-1", s0.kills, s0.source, s0.io)
	}
	if g.cluster().Status.LastFailover != nil {
		t.Fatal("a switchover counted as a failover for anti-flapping")
	}
	want := []string{"SwitchoverStarted", "Demoted", "Promoted", "SwitchoverCompleted"}
	if got := g.eventReasons(); !slices.Equal(got, want) {
		t.Fatalf("events %v; want %v", got, want)
	}
	mustWrite(t, db, addr(1), 1)
	db.pump()
	if lastSeq(s0.binlog) != 5 {
		t.Fatalf("the old primary has up to %d; want 5", lastSeq(s0.binlog))
	}
}

func TestSwitchoverToAnUnhealthyTargetIsRefused(t *testing.T) {
	g, db := newFailoverRig(t)
	db.server(addr(2)).down = true
	g.store.clusters["default/shop"].Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover,
		From: "shop-0", To: "shop-2", Step: spec.StepRequested, StartedAt: g.clock}
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-0")
	if got := g.eventReasons(); !slices.Equal(got, []string{"SwitchoverAborted"}) {
		t.Fatalf("events %v; want SwitchoverAborted", got)
	}
}

// TestFailoverResumesInANewProcess: a scheduler that dies after any step
// leaves the operation where a new one (fresh memory) finishes it.
func TestFailoverResumesInANewProcess(t *testing.T) {
	for stop := 1; stop <= 8; stop++ {
		t.Run(fmt.Sprintf("after%d", stop), func(t *testing.T) {
			g, db := newFailoverRig(t)
			writeAndReplicate(t, db, 3)
			db.server(addr(0)).down = true
			g.failTask(0, mesos.TASK_FAILED)
			for range stop {
				g.actsNow()
			}
			g.r = &ClusterReconciler{Store: g.store, Mesos: g.mesos, Role: g.r.Role, Now: g.r.Now, Log: g.r.Log, Servers: db}
			g.converge(db)
			p := g.cluster().Status.CurrentPrimary
			if p == "shop-0" {
				t.Fatal("no failover")
			}
			checkOnePrimary(t, g, db, p)
			if got := lastSeq(db.server(addr(int(p[5] - '0'))).binlog); got != 3 {
				t.Fatalf("new primary has %d transactions; want 3", got)
			}
		})
	}
}

// TestPrimaryBackFromPartitionAcknowledgesNothing: a primary cut off by a
// partition committed a transaction no replica got, and its client waits
// for the acknowledgement. Failed over meanwhile, it comes back writable
// with the same task: it is made read-only and its clients disconnected
// before anything could release that commit, and it is marked errant.
func TestPrimaryBackFromPartitionAcknowledgesNothing(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	s0 := db.server(addr(0))
	s0.binlog = append(s0.binlog, txn{s0.id, 4})
	s0.waiting, s0.down = 1, true
	g.failTask(0, mesos.TASK_UNREACHABLE)
	g.converge(db)
	newPrimary := g.cluster().Status.CurrentPrimary
	if newPrimary == "shop-0" {
		t.Fatal("no failover for an unreachable primary")
	}
	mustWrite(t, db, addr(int(newPrimary[5]-'0')), 2)
	// The partition heals: same task, still writable, semi-sync on.
	g.failTask(0, mesos.TASK_RUNNING)
	s0.down = false
	g.converge(db)
	g.converge(db)
	if s0.leaked != 0 {
		t.Fatalf("%d commit(s) were released without a replica having them", s0.leaked)
	}
	if !s0.readOnly || s0.kills == 0 || s0.source != "" && s0.io == "Yes" {
		t.Fatalf("old primary read-only %v, %d connection kills, source %q io %s; want it fenced", s0.readOnly, s0.kills, s0.source, s0.io)
	}
	if rec := g.store.instance("default/shop/0"); rec.Errant == "" {
		t.Fatal("the old primary with a commit nobody else has is not marked errant")
	}
}

// TestFormerPrimaryBacklogAcknowledgesNothing: a primary cut off by a
// partition keeps taking commits from a client on its side, each waiting
// for an acknowledgement that cannot come; the client gives up on each and
// reconnects, so a backlog builds up behind the first (binary log group
// commit: only the first group's leader waits for the acknowledgement, the
// groups behind it wait for that leader). Once healed, the former primary
// is fenced before it rejoins or is re-seeded. Killing a waiting leader
// lets the backlog commit: whenever the client reconnects (during the
// kills, after them), it must never be told OK for a commit no replica
// has. With the new primary behind the old one's sequence numbers the old
// primary is marked errant at once; ahead of them, it is pointed at the
// new primary and refused as diverged: both paths fence it.
func TestFormerPrimaryBacklogAcknowledgesNothing(t *testing.T) {
	for _, newWrites := range []int{2, 20} {
		for after := range 12 {
			t.Run(fmt.Sprintf("new primary +%d, client back after %d kills", newWrites, after), func(t *testing.T) {
				g, db := newFailoverRig(t)
				writeAndReplicate(t, db, 3)
				s0 := db.server(addr(0))
				s0.down = true // for Mysos and the replicas; the client is on its side
				s0.staleCommits(6)
				client := s0.newClient(after)
				g.failTask(0, mesos.TASK_UNREACHABLE)
				g.converge(db)
				newPrimary := g.cluster().Status.CurrentPrimary
				if newPrimary == "shop-0" {
					t.Fatal("no failover for an unreachable primary")
				}
				mustWrite(t, db, addr(int(newPrimary[5]-'0')), newWrites)
				g.failTask(0, mesos.TASK_RUNNING)
				s0.down = false
				g.converge(db)
				g.converge(db)
				if client.ackedAlone != 0 || s0.leaked != 0 {
					t.Fatalf("the client was told OK for %d commit(s) no replica has (%d released in all)", client.ackedAlone, s0.leaked)
				}
				if !s0.readOnly || len(s0.pipeline) != 0 {
					t.Fatalf("old primary read-only %v, %d group(s) still committing; want it fenced", s0.readOnly, len(s0.pipeline))
				}
				if rec := g.store.instance("default/shop/0"); rec.Errant == "" {
					t.Fatal("the old primary with commits nobody else has is not marked errant")
				}
			})
		}
	}
}

// TestScaleDownDrainsAReplicaBeforeReleasingIt: the replica that goes may
// be the only one that received (and acknowledged) the last write. It stops
// acknowledging first, and goes only once a staying replica has all it got.
func TestScaleDownDrainsAReplicaBeforeReleasingIt(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	mustWrite(t, db, addr(0), 1)
	db.pump(addr(2)) // only shop-2 has transaction 4
	*g.store.clusters["default/shop"].Spec.Replicas = 2
	g.settle()
	rec := g.store.instance("default/shop/2")
	if rec.Phase == store.InstanceReleasing {
		t.Fatal("shop-2 released while it alone holds an acknowledged transaction")
	}
	if s := db.server(addr(2)); s.io != "No" {
		t.Fatalf("shop-2's IO thread is %q; want it stopped before it goes", s.io)
	}
	db.pump(addr(1))
	g.settle()
	if rec := g.store.instance("default/shop/2"); rec.Phase != store.InstanceReleasing {
		t.Fatalf("shop-2 is %s; want it released once shop-1 has everything it received", rec.Phase)
	}
}

// TestScaleDownMovesThePrimaryFirst: a primary beyond the new spec.replicas
// is switched over to a staying replica, then released like any other.
func TestScaleDownMovesThePrimaryFirst(t *testing.T) {
	g, db := newFailoverRig(t)
	g.store.clusters["default/shop"].Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover,
		From: "shop-0", To: "shop-2", Step: spec.StepRequested, StartedAt: g.clock}
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-2")
	*g.store.clusters["default/shop"].Spec.Replicas = 2
	g.converge(db)
	st := g.cluster().Status
	if st.CurrentPrimary == "shop-2" || st.Operation != nil {
		t.Fatalf("primary %s, operation %+v; want the primary moved off shop-2", st.CurrentPrimary, st.Operation)
	}
	if rec := g.store.instance("default/shop/2"); rec == nil || rec.Phase != store.InstanceReleasing {
		t.Fatalf("shop-2: %+v; want it released once it is no longer the primary", rec)
	}
	if got := g.eventReasons(); !slices.Contains(got, "SwitchoverRequested") {
		t.Fatalf("events %v; want SwitchoverRequested", got)
	}
}

// TestWaitCountFollowsReadyReplicas (MySQL 8, where the count can exceed
// one): a scale-up raises the semi-sync wait count only once the new
// replicas replicate; a scale-down lowers it before any replica goes.
func TestWaitCountFollowsReadyReplicas(t *testing.T) {
	c := newCluster(3, 1)
	c.Spec.Flavor = "mysql"
	g := newRig(t, c, true)
	db := newFakeMySQL()
	g.r.Servers = db
	g.settle()
	g.launchAll()
	for i := range 5 {
		db.server(addr(i))
	}
	g.converge(db)
	primary := db.server(addr(0))
	if !primary.semiSync || primary.waitCount != 1 {
		t.Fatalf("semi-sync %v waiting for %d; want on, 1 of 2 replicas", primary.semiSync, primary.waitCount)
	}
	*g.store.clusters["default/shop"].Spec.Replicas = 5
	db.server(addr(4)).down = true // one new replica is not ready yet
	g.settle()
	g.launchAll()
	g.converge(db)
	if primary.waitCount != 1 {
		t.Fatalf("waiting for %d with 3 replicas ready; want 1 until the 4th is", primary.waitCount)
	}
	db.server(addr(4)).restart()
	g.converge(db)
	if primary.waitCount != 2 {
		t.Fatalf("waiting for %d with 4 replicas ready; want 2", primary.waitCount)
	}
	*g.store.clusters["default/shop"].Spec.Replicas = 3
	g.settle()
	if primary.waitCount != 1 {
		t.Fatalf("waiting for %d after the scale-down to 2 staying replicas; want 1", primary.waitCount)
	}
	for _, ord := range []int{3, 4} {
		if rec := g.store.instance(fmt.Sprintf("default/shop/%d", ord)); rec.Phase != store.InstanceReleasing {
			t.Fatalf("shop-%d is %s; want it released", ord, rec.Phase)
		}
	}
}

// TestPrimaryRestartedInPlaceWaitsForReplicas: a primary that restarts in
// place (its failover held by the block window) comes back with semi-sync
// off; it is turned on before the primary takes writes again.
func TestPrimaryRestartedInPlaceWaitsForReplicas(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	g.store.clusters["default/shop"].Spec.Failover.Automatic = new(bool) // false: held
	s0 := db.server(addr(0))
	s0.down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	g.launchAll()
	s0.restart()
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-0")
	if s0.openedBare || !s0.semiSync {
		t.Fatalf("opened without semi-sync: %v, semi-sync now %v; want it on before the first write", s0.openedBare, s0.semiSync)
	}
}

// TestPrimaryBackEmptyIsNotOpened: a primary whose failover is held comes
// back on a fresh volume (its agent was gone): it has nothing the replicas
// have, so it is failed over rather than made writable, once allowed.
func TestPrimaryBackEmptyIsNotOpened(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	c := g.store.clusters["default/shop"]
	c.Spec.Failover.Automatic = new(bool)
	s0 := db.server(addr(0))
	s0.down = true
	g.failTask(0, mesos.TASK_FAILED)
	g.converge(db)
	g.launchAll()
	s0.restart()
	s0.binlog, s0.relay = nil, nil // a fresh volume
	g.converge(db)
	if !s0.readOnly {
		t.Fatal("an empty former primary was made writable over replicas holding 3 transactions")
	}
	*c.Spec.Failover.Automatic = true
	g.converge(db)
	p := g.cluster().Status.CurrentPrimary
	if p == "shop-0" {
		t.Fatal("no failover away from the empty primary")
	}
	if got := lastSeq(db.server(addr(int(p[5] - '0'))).binlog); got != 3 {
		t.Fatalf("the new primary has %d transactions; want 3", got)
	}
}

// TestSwitchoverGivesUpWhenTheTargetCannotCatchUp: the target's applier
// is stuck; the switchover is aborted and the old primary, which was made
// read-only, takes writes again.
func TestSwitchoverGivesUpWhenTheTargetCannotCatchUp(t *testing.T) {
	g, db := newFailoverRig(t)
	mustWrite(t, db, addr(0), 2)
	db.server(addr(1)).stuck = true
	db.pump()
	g.store.clusters["default/shop"].Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover,
		From: "shop-0", To: "shop-1", Step: spec.StepRequested, StartedAt: g.clock}
	for range 10 {
		_, _ = g.r.Reconcile(context.Background(), "default/shop")
	}
	g.converge(db)
	checkOnePrimary(t, g, db, "shop-0")
	if got := g.eventReasons(); !slices.Contains(got, "SwitchoverAborted") {
		t.Fatalf("events %v; want SwitchoverAborted", got)
	}
}

// TestNewPrimaryDyingBeforeWritesIsFailedOverAgain: the candidate is
// recorded as the primary, then dies before it is opened to writes.
func TestNewPrimaryDyingBeforeWritesIsFailedOverAgain(t *testing.T) {
	g, db := newFailoverRig(t)
	writeAndReplicate(t, db, 3)
	db.server(addr(0)).down = true
	g.failTask(0, mesos.TASK_FAILED)
	for g.cluster().Status.Operation == nil || g.cluster().Status.Operation.Step != spec.StepConfiguring {
		if !g.actsNow() {
			t.Fatal("the failover stopped before Configuring")
		}
	}
	second := g.cluster().Status.CurrentPrimary
	ord := int(second[5] - '0')
	db.server(addr(ord)).down = true
	g.failTask(ord, mesos.TASK_FAILED)
	g.converge(db) // blocked: the first primary is not back yet
	// The first primary comes back with everything, so a quorum answers.
	g.launchAll()
	db.server(addr(0)).restart()
	g.converge(db)
	st := g.cluster().Status
	if st.CurrentPrimary == second || st.Operation != nil {
		t.Fatalf("primary %s, operation %+v; want a second failover away from %s", st.CurrentPrimary, st.Operation, second)
	}
	checkOnePrimary(t, g, db, st.CurrentPrimary)
}

// mustWrite commits n transactions on the server at a.
func mustWrite(t *testing.T, db *fakeMySQL, a string, n int) {
	t.Helper()
	if err := db.write(a, n); err != nil {
		t.Fatal(err)
	}
}

// writeAndReplicate commits n transactions on shop-0, the rig's first
// primary, and lets every replica fetch and apply them.
func writeAndReplicate(t *testing.T, db *fakeMySQL, n int) {
	t.Helper()
	mustWrite(t, db, addr(0), n)
	db.pump()
}
