package reconciler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/offers"
	"github.com/mysos-project/mysos/pkg/placement"
	"github.com/mysos-project/mysos/pkg/store"
)

// ExecutorConfig describes the executor every instance's task runs on.
type ExecutorConfig struct {
	// Path is the mysos-executor binary as the agents see it, used when
	// URI is empty.
	Path string
	// URI is where agents fetch mysos-executor from (the Mesos fetcher);
	// SHA256, when set, is checked before it runs.
	URI, SHA256 string
	// Cache lets agents keep the fetched executor in their fetcher cache
	// (Mesos' CommandInfo.URI.cache); only for a URI whose content never
	// changes, such as the scheduler's own, which names its SHA-256.
	Cache bool
	// Workload is what the executor runs: "hold" (a placeholder that keeps
	// the volume) until the MySQL workload exists.
	Workload string
	// CPUs and MemMiB are reserved for the executor on top of the task.
	CPUs, MemMiB float64
}

// command starts the executor: fetched by the agent from URI into the
// sandbox and checked against SHA256 before it runs, or, without a URI, the
// binary at Path on the agent.
func (e ExecutorConfig) command() mesos.CommandInfo {
	if e.URI == "" {
		return mesos.CommandInfo{Value: proto.String(e.Path), Shell: proto.Bool(false), Arguments: []string{e.Path}}
	}
	run := "exec ./" + executorFile
	if e.SHA256 != "" {
		run = fmt.Sprintf("echo '%s  %s' | sha256sum -c --quiet - && %s", e.SHA256, executorFile, run)
	}
	return mesos.CommandInfo{
		Value: proto.String(run), Shell: proto.Bool(true),
		URIs: []mesos.CommandInfo_URI{{Value: e.URI, Executable: proto.Bool(true), OutputFile: proto.String(executorFile), Cache: proto.Bool(e.Cache)}},
	}
}

// executorFile is the executor's name in the sandbox.
const executorFile = "mysos-executor"

// Default executor overhead.
const (
	DefaultExecutorCPUs   = 0.1
	DefaultExecutorMemMiB = 32
)

// Launcher turns offers into launches: it places Pending instances
// (pinned ones on their own agent first, the rest through pkg/placement),
// and gives back reservations that no instance owns any more. It implements
// framework.OfferHandler. Every decision is written to the instance's record
// before the operations go to Mesos.
type Launcher struct {
	Store InstanceStore
	// Clusters and Passwords feed the mysql workload's task data.
	Clusters  ClusterGetter
	Passwords PasswordStore
	// TLS issues the certificates of clusters with spec.tls.
	TLS         *MySQLTLS
	Role        string
	Principal   string
	FrameworkID func() string
	Executor    ExecutorConfig
	// Jobs holds backup jobs and Archivers archiver records to launch;
	// Backups their resources.
	Jobs      BackupStore
	Archivers ArchiverRecords
	Backups   Backups
	// Wake, when set, requeues a cluster whose instances changed.
	Wake func(clusterKey string)
	Log  *slog.Logger
	Now  func() time.Time
}

// KnownTasks implements framework.OfferHandler: every task an instance
// record names, for explicit reconciliation.
func (l *Launcher) KnownTasks(ctx context.Context) ([]framework.TaskRef, error) {
	insts, err := l.Store.ListInstances(ctx, "", "")
	if err != nil {
		return nil, err
	}
	var refs []framework.TaskRef
	for _, inst := range insts {
		if inst.TaskID != "" {
			refs = append(refs, framework.TaskRef{ID: inst.TaskID, AgentID: inst.AgentID})
		}
	}
	jobs, err := l.listJobs(ctx)
	for _, j := range jobs {
		if j.Phase == store.BackupLaunched {
			refs = append(refs, framework.TaskRef{ID: j.TaskID, AgentID: j.AgentID})
		}
	}
	if err != nil || l.Archivers == nil {
		return refs, err
	}
	archivers, err := l.Archivers.ListArchivers(ctx)
	for _, a := range archivers {
		if a.Phase == store.InstanceLaunched {
			refs = append(refs, framework.TaskRef{ID: a.TaskID, AgentID: a.AgentID})
		}
	}
	return refs, err
}

// HandleOffers implements framework.OfferHandler.
func (l *Launcher) HandleOffers(ctx context.Context, mesosOffers []mesos.Offer) (map[string][]mesos.Offer_Operation, bool) {
	insts, err := l.Store.ListInstances(ctx, "", "")
	if err != nil {
		l.log().Warn("cannot read instances; declining offers", "err", err)
		return nil, true
	}
	b := l.newBatch(mesosOffers, insts)
	b.releaseUnowned(ctx)
	b.launchPinned(ctx)
	b.launchPlaced(ctx)
	b.launchJobs(ctx)
	b.launchArchivers(ctx)
	if l.Wake != nil {
		for _, key := range slices.Sorted(maps.Keys(b.touched)) {
			l.Wake(key)
		}
	}
	return b.accept, b.wantMore()
}

// batch is the work on one OFFERS event.
type batch struct {
	l       *Launcher
	offers  []offers.Offer
	views   []placement.Offer // what is left unreserved in each offer
	insts   []*store.Instance
	owned   map[offers.Owner]*store.Instance
	accept  map[string][]mesos.Offer_Operation
	done    map[*store.Instance]bool // launched or released in this batch
	touched map[string]bool          // cluster keys to wake
	// jobsWaiting: a backup job still waits for an offer.
	jobsWaiting bool
}

func (l *Launcher) newBatch(ms []mesos.Offer, insts []*store.Instance) *batch {
	b := &batch{l: l, insts: insts, owned: map[offers.Owner]*store.Instance{},
		accept: map[string][]mesos.Offer_Operation{}, done: map[*store.Instance]bool{}, touched: map[string]bool{}}
	for i := range ms {
		o := offers.Read(&ms[i])
		b.offers = append(b.offers, o)
		b.views = append(b.views, o.Placement())
	}
	for _, inst := range insts {
		if inst.PersistenceID != "" {
			b.owned[ownerOf(inst)] = inst
		}
	}
	return b
}

func ownerOf(inst *store.Instance) offers.Owner {
	return offers.Owner{Instance: inst.Key(), ClusterUID: inst.ClusterUID, PersistenceID: inst.PersistenceID}
}

// releaseUnowned gives back reservations whose owner is gone, moved, or
// being released. Mesos offers only resources no task uses, so a volume in
// an offer is never in use.
func (b *batch) releaseUnowned(ctx context.Context) {
	for _, o := range b.offers {
		owners := slices.SortedFunc(maps.Keys(o.Reserved), func(a, c offers.Owner) int {
			return cmp.Compare(a.Instance+a.PersistenceID, c.Instance+c.PersistenceID)
		})
		for _, owner := range owners {
			inst := b.owned[owner]
			if inst != nil && inst.Phase != store.InstanceReleasing {
				continue
			}
			if inst != nil {
				// The task's share comes back before the executor's: wait
				// for the whole reservation, or the executor's share would
				// outlive the record that accounts for it.
				if need := b.l.launchFor(inst).Missing(o.Reserved[owner]); need != (offers.Need{}) {
					continue
				}
				if err := b.l.Store.DeleteInstance(ctx, inst); err != nil {
					b.l.log().Warn("cannot remove a released instance's record; retrying with the next offer", "instance", inst.Key(), "err", err)
					continue
				}
				b.done[inst] = true
				b.touched[inst.ClusterKey()] = true
			}
			b.l.log().Info("releasing resources", "agent", o.Mesos.AgentID.Value, "owner", owner.Instance,
				"volume", owner.PersistenceID, "resources", o.Reserved[owner].String())
			b.accept[o.Mesos.ID.Value] = append(b.accept[o.Mesos.ID.Value], offers.Release(o.Reserved[owner])...)
		}
	}
}

// launchPinned relaunches instances on the agent that holds their volume.
func (b *batch) launchPinned(ctx context.Context) {
	for _, inst := range b.insts {
		if inst.Phase != store.InstancePending || inst.AgentID == "" || b.l.now().Before(inst.NotBefore) {
			continue
		}
		i := b.offerOn(inst.AgentID, inst.Request.Role)
		if i < 0 {
			continue
		}
		o := b.offers[i]
		existing := o.Reserved[ownerOf(inst)]
		launch := b.l.launchFor(inst)
		need := launch.Missing(existing)
		var port uint64
		if need.Port {
			port = inst.Port
		}
		if !b.views[i].Take(need.CPUs, need.MemMiB, need.DiskMiB, port) {
			continue
		}
		// The agent may have come back under another hostname (a dev
		// cluster switched to namespaces, a machine renamed): the task
		// binds and is reached where the agent is now.
		inst.Hostname = o.Mesos.Hostname
		b.launch(ctx, inst, o, existing)
	}
}

// launchPlaced places the instances that may go anywhere.
func (b *batch) launchPlaced(ctx context.Context) {
	placed := placement.Placed{}
	var requests []placement.Request
	byKey := map[string]*store.Instance{}
	for _, inst := range b.insts {
		if inst.Phase != store.InstanceReleasing && inst.AgentID != "" {
			placed.Add(inst.ClusterKey(), inst.Domain)
		}
		if inst.Phase != store.InstancePending || inst.AgentID != "" || b.l.now().Before(inst.NotBefore) {
			continue
		}
		r := inst.Request
		requests = append(requests, placement.Request{
			Cluster: inst.ClusterKey(), Instance: inst.Key(),
			CPUs: r.CPUs + b.l.Executor.CPUs, MemMiB: r.MemMiB + b.l.Executor.MemMiB, DiskMiB: r.DiskMiB, Ports: 1,
			SpreadKey: r.SpreadKey, MaxPerDomain: r.MaxPerDomain, Attributes: r.Attributes,
		})
		byKey[inst.Key()] = inst
	}
	if len(requests) == 0 {
		return
	}
	var views []placement.Offer
	var index []int
	for i, v := range b.views {
		if b.offers[i].Role == b.l.Role {
			views = append(views, v)
			index = append(index, i)
		}
	}
	for _, a := range placement.Place(requests, views, placed) {
		inst := byKey[a.Request.Instance]
		o := b.offerByID(a.OfferID)
		next := *inst
		next.AgentID = o.Mesos.AgentID.Value
		next.Hostname = o.Mesos.Hostname
		next.Domain, _ = placement.Domain(inst.Request.SpreadKey, o.Mesos.Hostname, o.Placement().Attributes)
		next.Port = a.Ports[0]
		next.PersistenceID = fmt.Sprintf("%s.%s.%d.%s", inst.Namespace, inst.Cluster, inst.Ordinal, shortID())
		if !b.launch(ctx, &next, o, nil) {
			continue
		}
		*inst = next
		b.done[inst] = true
		// Place worked on copies: take the resources from the shared view.
		for k, i := range index {
			if views[k].ID == a.OfferID {
				b.views[i].Take(a.Request.CPUs, a.Request.MemMiB, a.Request.DiskMiB, a.Ports[0])
			}
		}
	}
}

// launch records inst as Launched with a new task and queues the ACCEPT's
// operations; false when the record could not be written.
func (b *batch) launch(ctx context.Context, inst *store.Instance, o offers.Offer, existing mesos.Resources) bool {
	next := *inst
	next.Phase = store.InstanceLaunched
	next.Launches++
	next.TaskID = fmt.Sprintf("%s%d.%d-%s", TaskIDPrefix(inst.Namespace, inst.Cluster), inst.Ordinal, next.Launches, shortID())
	next.Since = b.l.now()
	data, err := b.l.taskData(ctx, &next)
	if err != nil {
		b.l.log().Warn("cannot describe the task; not launching", "instance", inst.Key(), "err", err)
		return false
	}
	if err := b.l.Store.PutInstance(ctx, &next); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			b.l.log().Warn("cannot record a launch; not launching", "instance", inst.Key(), "err", err)
		}
		return false
	}
	*inst = next // later steps of this batch see the launch
	b.done[inst] = true
	b.touched[inst.ClusterKey()] = true
	launch := b.l.launchFor(inst)
	launch.Data = data
	b.l.log().Info("launching", "instance", inst.Name(), "task", inst.TaskID, "agent", inst.AgentID,
		"host", inst.Hostname, "port", inst.Port, "volume", inst.PersistenceID, "relaunch", inst.Launches > 1)
	b.accept[o.Mesos.ID.Value] = append(b.accept[o.Mesos.ID.Value], launch.Operations(existing)...)
	return true
}

// launchFor describes inst's task.
func (l *Launcher) launchFor(inst *store.Instance) offers.Launch {
	fwID := ""
	if l.FrameworkID != nil {
		fwID = l.FrameworkID()
	}
	return offers.Launch{
		Owner: ownerOf(inst), Role: inst.Request.Role, Principal: l.Principal,
		CPUs: inst.Request.CPUs, MemMiB: inst.Request.MemMiB, DiskMiB: inst.Request.DiskMiB, Port: inst.Port,
		ExecutorCPUs: l.Executor.CPUs, ExecutorMemMiB: l.Executor.MemMiB,
		FrameworkID: fwID, AgentID: inst.AgentID, TaskID: inst.TaskID, TaskName: inst.Name(),
		Command: l.Executor.command(),
		Labels:  map[string]string{"mysos.io/cluster": inst.ClusterKey(), "mysos.io/instance": inst.Name()},
	}
}

// wantMore: offers are still needed while an instance waits for one, or a
// released instance's resources have not come back yet.
func (b *batch) wantMore() bool {
	for _, inst := range b.insts {
		if b.done[inst] {
			continue
		}
		if inst.Phase == store.InstancePending || (inst.Phase == store.InstanceReleasing && inst.AgentID != "") {
			return true
		}
	}
	return b.jobsWaiting
}

func (b *batch) offerOn(agentID, role string) int {
	for i, o := range b.offers {
		if o.Mesos.AgentID.Value == agentID && o.Role == role {
			return i
		}
	}
	return -1
}

func (b *batch) offerByID(id string) offers.Offer {
	for _, o := range b.offers {
		if o.Mesos.ID.Value == id {
			return o
		}
	}
	panic("placement returned an unknown offer " + id)
}

func (l *Launcher) log() *slog.Logger {
	if l.Log != nil {
		return l.Log
	}
	return slog.Default()
}

func (l *Launcher) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now().UTC()
}

// shortID is a random suffix that makes task and volume ids unique.
func shortID() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:8] }
