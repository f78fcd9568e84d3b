package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/offers"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// offer is an offer of plain resources on agent i, allocated to role mysos.
func offer(i int, extra ...mesos.Resource) mesos.Offer {
	alloc := func(r mesos.Resource) mesos.Resource {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String("mysos")}
		return r
	}
	rs := []mesos.Resource{
		alloc(mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 4}}),
		alloc(mesos.Resource{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 8192}}),
		alloc(mesos.Resource{Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 65536}}),
		alloc(mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}}}),
	}
	return mesos.Offer{
		ID: mesos.OfferID{Value: fmt.Sprintf("o%d", i)}, AgentID: mesos.AgentID{Value: fmt.Sprintf("S%d", i)},
		FrameworkID: mesos.FrameworkID{Value: "fw"}, Hostname: fmt.Sprintf("agent-%d", i),
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto.String("mysos")},
		Resources:      append(rs, extra...),
	}
}

// offeredBack is what Mesos offers of an instance's reservation once its
// task is gone: the reserved resources, the disk as the created volume.
func offeredBack(ops []mesos.Offer_Operation) []mesos.Resource {
	var rs mesos.Resources
	var volumes []mesos.Resource
	for _, op := range ops {
		switch op.Type {
		case mesos.Offer_Operation_RESERVE:
			rs = append(rs, op.Reserve.Resources...)
		case mesos.Offer_Operation_CREATE:
			volumes = append(volumes, op.Create.Volumes...)
		}
	}
	var out []mesos.Resource
	for _, r := range rs {
		if r.Name != "disk" {
			out = append(out, r)
		}
	}
	return append(out, volumes...)
}

func opTypes(ops []mesos.Offer_Operation) string {
	s := ""
	for _, op := range ops {
		s += op.Type.String() + " "
	}
	return s
}

func newLauncher(fs *fakeStore) *Launcher {
	return &Launcher{Store: fs, Role: "mysos", FrameworkID: func() string { return "fw" }, Log: slog.New(slog.DiscardHandler),
		Executor: ExecutorConfig{Path: "/bin/mysos-executor", Workload: "hold", CPUs: DefaultExecutorCPUs, MemMiB: DefaultExecutorMemMiB}}
}

func TestLauncherSpreadsReservesAndRelaunchesInPlace(t *testing.T) {
	g := newRig(t, newCluster(3, 1), true)
	g.settle()
	l := newLauncher(g.store)
	ctx := context.Background()

	accept, wantMore := l.HandleOffers(ctx, []mesos.Offer{offer(1), offer(2), offer(3)})
	if wantMore {
		t.Fatal("wants more offers after placing every instance")
	}
	agents := map[string]bool{}
	for ord := range 3 {
		inst := g.store.instance(fmt.Sprintf("default/shop/%d", ord))
		if inst.Phase != store.InstanceLaunched || inst.TaskID == "" || inst.PersistenceID == "" || inst.Port == 0 {
			t.Fatalf("instance %d after the offers: %+v", ord, inst)
		}
		agents[inst.AgentID] = true
	}
	if len(agents) != 3 {
		t.Fatalf("3 instances on agents %v; want 3 distinct", agents)
	}
	for id, ops := range accept {
		if got := opTypes(ops); got != "RESERVE CREATE LAUNCH " {
			t.Fatalf("offer %s: operations %s; want RESERVE CREATE LAUNCH", id, got)
		}
	}

	// Instance 1's task fails; the reconciler pins it to its agent.
	g.run("default/shop/1", mesos.TASK_FAILED)
	g.settle()
	inst := g.store.instance("default/shop/1")
	agent := inst.AgentID
	var i int
	fmt.Sscanf(agent, "S%d", &i)
	back := offeredBack(accept[fmt.Sprintf("o%d", i)])
	accept, _ = l.HandleOffers(ctx, []mesos.Offer{offer(i, back...)})
	ops := accept[fmt.Sprintf("o%d", i)]
	if got := opTypes(ops); got != "LAUNCH " {
		t.Fatalf("relaunch operations %s; want LAUNCH alone on the existing reservation and volume", got)
	}
	task := ops[0].Launch.TaskInfos[0]
	var volume string
	for _, r := range task.Resources {
		if r.IsPersistentVolume() {
			volume = r.Disk.Persistence.ID
		}
	}
	if after := g.store.instance("default/shop/1"); volume != inst.PersistenceID || after.AgentID != agent || after.Launches != 2 || task.TaskID.Value != after.TaskID {
		t.Fatalf("relaunched %+v with volume %q; want agent %s and volume %s", after, volume, agent, inst.PersistenceID)
	}
}

func TestLauncherReleasesWhatNobodyOwns(t *testing.T) {
	g := newRig(t, newCluster(2, 1), true)
	g.settle()
	l := newLauncher(g.store)
	ctx := context.Background()
	accept, _ := l.HandleOffers(ctx, []mesos.Offer{offer(1), offer(2)})

	// Scale to 1: instance 1 is released and its task killed.
	*g.cluster().Spec.Replicas = 1
	g.settle()
	g.run("default/shop/1", mesos.TASK_KILLED)
	released := g.store.instance("default/shop/1")
	var i int
	fmt.Sscanf(released.AgentID, "S%d", &i)
	back := offeredBack(accept[fmt.Sprintf("o%d", i)])

	// And a reservation some earlier incarnation left behind.
	stray := offers.Launch{Owner: offers.Owner{Instance: "default/gone/0", ClusterUID: "old", PersistenceID: "p-old"},
		Role: "mysos", CPUs: 1, MemMiB: 128, DiskMiB: 256, Port: 31500, FrameworkID: "fw", AgentID: "S9", TaskID: "t", TaskName: "gone-0"}
	strayBack := offeredBack(stray.Operations(nil))

	// The task's share comes back first; the executor's (0.1 cpus, 32 MiB)
	// only once it exited. Nothing is released, and the record stays, until
	// the whole reservation is offered.
	var taskShare []mesos.Resource
	for _, r := range back {
		r := *proto.Clone(&r).(*mesos.Resource)
		switch r.Name {
		case "cpus":
			r.Scalar.Value -= DefaultExecutorCPUs
		case "mem":
			r.Scalar.Value -= DefaultExecutorMemMiB
		}
		taskShare = append(taskShare, r)
	}
	accept, wantMore := l.HandleOffers(ctx, []mesos.Offer{offer(i, taskShare...)})
	if len(accept) != 0 || !wantMore || g.store.instance("default/shop/1") == nil {
		t.Fatalf("on a partial offer: operations %v, wantMore %v; want none, true, and the record kept", accept, wantMore)
	}

	accept, wantMore = l.HandleOffers(ctx, []mesos.Offer{offer(i, back...), offer(9, strayBack...)})
	if got := opTypes(accept[fmt.Sprintf("o%d", i)]); got != "DESTROY UNRESERVE " {
		t.Fatalf("released instance's offer: %s; want DESTROY UNRESERVE", got)
	}
	if got := opTypes(accept["o9"]); got != "DESTROY UNRESERVE " {
		t.Fatalf("stray reservation's offer: %s; want DESTROY UNRESERVE", got)
	}
	if g.store.instance("default/shop/1") != nil {
		t.Fatal("the released instance's record remains after its volume was destroyed")
	}
	if wantMore {
		t.Fatal("wants offers with nothing pending")
	}
	// The surviving instance's reservation is never touched.
	keep := g.store.instance("default/shop/0")
	var k int
	fmt.Sscanf(keep.AgentID, "S%d", &k)
	g.run("default/shop/0", mesos.TASK_RUNNING)
	accept, _ = l.HandleOffers(ctx, []mesos.Offer{offer(k, offeredBack(accept[fmt.Sprintf("o%d", k)])...)})
	if len(accept) != 0 {
		t.Fatalf("operations on a live instance's agent: %v", accept)
	}
}

func TestLauncherWaitsWhenNothingFits(t *testing.T) {
	g := newRig(t, newCluster(3, 1), true)
	g.settle()
	l := newLauncher(g.store)
	accept, wantMore := l.HandleOffers(context.Background(), []mesos.Offer{offer(1), offer(2)})
	if len(accept) != 2 || !wantMore {
		t.Fatalf("two agents for three spread instances: %d accepts, wantMore %v; want 2 and true", len(accept), wantMore)
	}
	known, err := l.KnownTasks(context.Background())
	if err != nil || len(known) != 2 {
		t.Fatalf("known tasks %v, %v; want the two launched", known, err)
	}
}

type fakePasswords map[string]store.Passwords

func (f fakePasswords) EnsurePasswords(_ context.Context, ns, name, uid string, accounts ...string) (store.Passwords, error) {
	key := ns + "/" + name + "/" + uid
	if f[key] == nil {
		f[key] = store.Passwords{}
	}
	for _, a := range accounts {
		if f[key][a] == "" {
			f[key][a] = "pw-" + a
		}
	}
	return f[key], nil
}

// TestMySQLTaskDataCarriesAccountsNotLabels: the mysql workload's task
// carries the server identity and every account with its password in its
// data, and nowhere else.
func TestMySQLTaskDataCarriesAccountsNotLabels(t *testing.T) {
	c := newCluster(3, 1)
	c.Spec.Users = []spec.User{{Name: "app", Host: "%", Databases: []string{"shop", "*"}, Privileges: []string{"SELECT"}}}
	g := newRig(t, c, true)
	g.settle()
	l := newLauncher(g.store)
	l.Executor.Workload = taskspec.WorkloadMySQL
	l.Clusters, l.Passwords = g.store, fakePasswords{}
	accept, _ := l.HandleOffers(context.Background(), []mesos.Offer{offer(1)})
	ops := accept["o1"]
	if len(ops) != 3 {
		t.Fatalf("operations %s", opTypes(ops))
	}
	task := ops[2].Launch.TaskInfos[0]
	d, err := taskspec.Parse(task.Data)
	if err != nil {
		t.Fatal(err)
	}
	m := d.MySQL
	if d.Workload != "mysql" || m.ServerID != 1 || m.Host != "agent-1" || m.MemoryMiB != 512 || !m.SemiSync || m.Admin != AdminUser {
		t.Fatalf("task data %+v", m)
	}
	var grants []string
	for _, u := range m.Users {
		grants = append(grants, u.Name+" "+u.On+" "+u.Password)
	}
	want := []string{"mysos_admin *.* pw-mysos_admin", "mysos_repl *.* pw-mysos_repl", "app `shop`.* pw-app", "app *.* pw-app"}
	if !slices.Equal(grants, want) {
		t.Fatalf("accounts %q; want %q", grants, want)
	}
	for _, where := range []string{task.Labels.String(), task.Executor.Command.String()} {
		if strings.Contains(where, "pw-") {
			t.Fatalf("a password outside the task data: %s", where)
		}
	}
}

func TestDonorPrefersAReplicaAndNeverItself(t *testing.T) {
	e := &spec.Endpoints{Primary: "h1:1", Replicas: []string{"h2:2", "h3:3"}}
	if d := donorFor(e, "h2:2"); d == nil || d.Host != "h3" || d.Port != 3 {
		t.Fatalf("donor %+v; want the other replica h3:3", d)
	}
	if d := donorFor(&spec.Endpoints{Primary: "h1:1"}, "h2:2"); d == nil || d.Host != "h1" {
		t.Fatalf("donor %+v; want the primary when no replica exists", d)
	}
	if d := donorFor(&spec.Endpoints{Primary: "h1:1"}, "h1:1"); d != nil {
		t.Fatalf("donor %+v; an instance never seeds from itself", d)
	}
	if d := donorFor(nil, "h1:1"); d != nil {
		t.Fatal("a cluster without a primary has no donor: its first members start empty")
	}
}

func TestSemiSyncWaitCount(t *testing.T) {
	for replicas, want := range map[int32]int{1: 1, 2: 1, 3: 1, 5: 2, 7: 3} {
		c := newCluster(replicas, 1)
		c.Spec.Flavor = "mysql"
		if got := semiSyncWaitCount(c); got != want {
			t.Errorf("mysql, %d members: wait for %d; want %d", replicas, got, want)
		}
		c.Spec.Flavor = "mariadb"
		if got := semiSyncWaitCount(c); got != 1 {
			t.Errorf("mariadb, %d members: wait for %d; MariaDB waits for one", replicas, got)
		}
	}
}

// TestLauncherRunsABackupBesideItsSource: a backup job with a source is
// launched on unreserved resources of the source's agent, recorded as
// Launched first, its task data carrying what the backup workload needs.
func TestLauncherRunsABackupBesideItsSource(t *testing.T) {
	c := newCluster(3, 1)
	c.Spec.Flavor = "mariadb"
	fs := newFakeStore(c)
	fs.passwords = store.Passwords{AdminUser: "secret"}
	l := newLauncher(fs)
	l.Clusters, l.Passwords, l.Jobs = fs, fs, fs
	ctx := context.Background()
	j := store.NewBackupJob(c, spec.BackupOnDemand, t0, "file:///backups")
	j.Instance, j.AgentID, j.SourceHost, j.SourcePort = "shop-1", "S2", "agent-2", 31000
	if err := fs.PutBackupJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	accept, wantMore := l.HandleOffers(ctx, []mesos.Offer{offer(1), offer(2)})
	ops := accept["o2"]
	if len(accept) != 1 || len(ops) != 1 || ops[0].Type != mesos.Offer_Operation_LAUNCH || wantMore {
		t.Fatalf("accept %v (wantMore %v); want one LAUNCH on o2, the source's agent", accept, wantMore)
	}
	task := ops[0].Launch.TaskInfos[0]
	for _, r := range task.Resources {
		if !r.IsUnreserved() {
			t.Fatalf("the backup task reserves %v; it should run on unreserved resources", r)
		}
	}
	d, err := taskspec.Parse(task.Data)
	if err != nil || d.Workload != taskspec.WorkloadBackup || d.Backup.Source.Host != "agent-2" || d.Backup.Password != "secret" || d.Backup.ID != j.ID {
		t.Fatalf("task data %+v (%v)", d.Backup, err)
	}
	jobs, _ := fs.ListBackupJobs(ctx, "default", "shop")
	if len(jobs) != 1 || jobs[0].Phase != store.BackupLaunched || jobs[0].TaskID != task.TaskID.Value {
		t.Fatalf("job %+v; want Launched with task %s", jobs[0], task.TaskID.Value)
	}
	if refs, _ := l.KnownTasks(ctx); !slices.ContainsFunc(refs, func(r framework.TaskRef) bool { return r.ID == task.TaskID.Value }) {
		t.Fatalf("known tasks %v lack the backup's", refs)
	}
}
