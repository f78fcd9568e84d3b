package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// ClusterStore is what the reconciler needs from storage.
type ClusterStore interface {
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
	// ReadCluster reads what a pass needs of a cluster in one request, and
	// UpdateStatusFrom writes its status without reading it again.
	ReadCluster(ctx context.Context, ns, name string) (*store.ClusterState, error)
	UpdateStatus(ctx context.Context, ns, name, uid string, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error)
	UpdateStatusFrom(ctx context.Context, st *store.ClusterState, mutate func(*spec.ClusterStatus) error) (*spec.MySQLCluster, error)
	SetFinalizers(ctx context.Context, ns, name, uid string, finalizers []string) error
	PublishEndpoints(ctx context.Context, ns, name, uid string, e spec.Endpoints, replicaLag map[string]float64) (spec.Endpoints, error)
	InstanceStore
	PasswordStore
	EventRecorder
	BackupStore
	ArchiverStore
}

// InstanceStore keeps instance records (see store.Instance).
type InstanceStore interface {
	ListInstances(ctx context.Context, ns, name string) ([]*store.Instance, error)
	PutInstance(ctx context.Context, inst *store.Instance) error
	DeleteInstance(ctx context.Context, inst *store.Instance) error
}

// Mesos is what the reconciler needs of the framework: whether it is
// subscribed, what it knows of tasks, and the calls that act on them.
type Mesos interface {
	Subscribed() (ok bool, reason string)
	Task(id string) (framework.Task, bool)
	TasksWithPrefix(prefix string) []framework.Task
	Kill(ctx context.Context, taskID, agentID string) error
	Revive(ctx context.Context) error
	ReconcileTasks(ctx context.Context, tasks []framework.TaskRef) error
}

// Condition reasons the reconciler writes.
const (
	ReasonSpecAccepted       = "SpecAccepted"
	ReasonMesosUnavailable   = "MesosUnavailable"
	ReasonRoleNotServed      = "RoleNotServed"
	ReasonInstancesPending   = "InstancesPending"
	ReasonAllRunning         = "AllInstancesRunning"
	ReasonReplicationPending = "ReplicationPending"
	ReasonDeleting           = "Deleting"
	ReasonPrimaryFailed      = "PrimaryFailed"
)

// resyncPeriod re-checks every cluster even when nothing wakes it, the safety
// net of a level-triggered loop.
const resyncPeriod = 30 * time.Second

// ClusterReconciler reconciles one MySQLCluster per call.
type ClusterReconciler struct {
	Store ClusterStore
	Mesos Mesos
	// Role is the Mesos role the framework serves; clusters asking for
	// another are reported, not launched.
	Role string
	// Servers reaches the instances' mysqld; nil when tasks run no mysqld
	// (the hold workload), and then roles are not managed.
	Servers Servers
	// TLS says which CAs the servers of clusters with spec.tls are
	// verified with.
	TLS *MySQLTLS
	// Backups says where backups go; BackupMetrics, when set, counts them.
	Backups       Backups
	BackupMetrics *metrics.Backups
	// ClusterMetrics and OperationMetrics, when set, show what passes
	// observe and the operations they end.
	ClusterMetrics   *metrics.Clusters
	OperationMetrics *metrics.Operations
	ServerMetrics    *metrics.Servers
	RelaunchTimeout  time.Duration
	ReleaseTimeout   time.Duration
	Log              *slog.Logger
	Now              func() time.Time

	mu     sync.Mutex
	killed map[string]time.Time // task id → when this process last sent KILL
	asked  map[string]time.Time // task id → when it last asked Mesos about it
	// silent: task id of a running primary → since when its mysqld has not
	// answered (failover detection; a restart starts the count afresh).
	silent map[string]time.Time
}

// Reconcile implements Reconciler: observe the cluster, its instances and
// their tasks; decide; perform at most one action; write the status.
func (r *ClusterReconciler) Reconcile(ctx context.Context, key string) (Result, error) {
	ns, name, ok := strings.Cut(key, "/")
	if !ok {
		return Result{}, fmt.Errorf("malformed cluster key %q", key)
	}
	state, err := r.Store.ReadCluster(ctx, ns, name)
	if errors.Is(err, store.ErrNotFound) {
		return r.reapOrphans(ctx, ns, name)
	}
	if err != nil {
		return Result{}, err
	}
	c := state.Cluster
	subscribed, reason := r.Mesos.Subscribed()
	w := r.observe(c, state.Instances, subscribed)
	w.stored = state
	w.jobs, w.backupDestination, w.archiver = state.BackupJobs, r.Backups.Destination(c), state.Archiver
	w.servers, w.passwords, w.tlsCA = r.observeServers(ctx, c, state.Instances)
	r.trackSilence(w)
	actions := decide(w)
	if err := r.writeStatus(ctx, c, w, reason); err != nil {
		return Result{}, err
	}
	r.setBackupGauges(w)
	for _, a := range actions {
		if !subscribed && !worksWithoutMesos(a.kind) {
			continue // the subscription's return requeues every cluster
		}
		r.logger().Info("reconcile", "cluster", key, "action", string(a.kind), "instance", instanceName(a.inst),
			"operation", actionOperation(c, a), "why", a.why)
		if err := r.perform(ctx, c, w, a); err != nil {
			return Result{}, fmt.Errorf("%s: %w", a, err)
		}
		r.lifecycleEvent(ctx, c, a)
		return Result{Requeue: true}, nil
	}
	if p := primaryInstance(w); c.Status.Operation != nil || (p != nil && r.isSilent(p.TaskID)) || len(notReplicating(w)) > 0 {
		// An operation, a failure detection or replication set-up is
		// under way: look again soon rather than at the next resync.
		return Result{RequeueAfter: operationRecheck}, nil
	}
	return Result{RequeueAfter: nextLook(w)}, nil
}

// primaryWatchPeriod is how often an idle cluster with a primary and
// replicas is looked at: nothing else notices a mysqld that stops
// answering while its task stays RUNNING (a partition), so failure
// detection by SQL takes spec.failover.unreachableTimeout plus at most
// this long.
const primaryWatchPeriod = 2 * time.Second

// nextLook is when an idle cluster is looked at again: at the resync, or
// sooner when its backup schedule fires before that, or at the primary
// watch of a replicated cluster whose mysqld servers are managed.
func nextLook(w world) time.Duration {
	next := resyncPeriod
	if w.servers != nil && primaryInstance(w) != nil && specReplicas(w.cluster) > 1 {
		next = primaryWatchPeriod
	}
	if st := backupStatusOf(w); st != nil && st.NextScheduled != nil {
		next = min(next, max(st.NextScheduled.Sub(w.now), time.Second))
	}
	return next
}

func (r *ClusterReconciler) observe(c *spec.MySQLCluster, instances []*store.Instance, subscribed bool) world {
	return world{
		cluster: c, instances: instances, task: r.Mesos.Task,
		tasks:          r.Mesos.TasksWithPrefix(TaskIDPrefix(c.Metadata.Namespace, c.Metadata.Name)),
		recentlyKilled: func(id string) bool { return r.recent(r.killed, id, killRetry) },
		recentlyAsked:  func(id string) bool { return r.recent(r.asked, id, unknownTaskGrace) },
		sqlDownSince:   r.silentSince,
		now:            r.now(), subscribed: subscribed, role: r.Role,
		timeouts: timeouts{relaunch: orDefault(r.RelaunchTimeout, DefaultRelaunchTimeout), release: orDefault(r.ReleaseTimeout, DefaultReleaseTimeout)},
	}
}

// worksWithoutMesos: without a subscription the reconciler prepares
// nothing (no finalizer, no records, so a cluster that never ran deletes at
// once) but still lets go of what never reached Mesos.
func worksWithoutMesos(k actionKind) bool {
	switch k {
	case actRelease, actForget, actRemoveFinalizer, actElectPrimary, actPromote, actDetach, actStopIO, actReplicate, actSemiSync, actCreateDatabase, actMarkErrant,
		actScheduleBackup, actFailBackup, actFinishBackup, actTrimBackupJobs, actForgetArchiver:
		return true
	}
	return false
}

// perform carries out one decided action.
func (r *ClusterReconciler) perform(ctx context.Context, cluster *spec.MySQLCluster, w world, a action) error {
	c := a.inst
	meta := cluster.Metadata
	switch a.kind {
	case actElectPrimary, actPromote, actDetach, actStopIO, actReplicate, actSemiSync, actCreateDatabase:
		return r.performTopology(ctx, cluster, w, a)
	case actBeginFailover, actFence, actChoose, actStartSwitchover, actRequestSwitchover, actDemote, actCatchUp, actFinish, actBlock, actAbort, actMarkErrant:
		return r.performOperation(ctx, cluster, w, a)
	case actScheduleBackup, actAssignBackup, actFailBackup, actFinishBackup, actReconcileBackup, actTrimBackupJobs:
		return r.performBackup(ctx, cluster, a)
	case actStartArchiver, actRelaunchArchiver, actKillArchiver, actForgetArchiver, actReconcileArchiver:
		return r.performArchiver(ctx, cluster, a)
	case actAddFinalizer:
		return r.Store.SetFinalizers(ctx, meta.Namespace, meta.Name, meta.UID, append(slices.Clone(meta.Finalizers), FinalizerTasks))
	case actRemoveFinalizer:
		// Clients must not keep connecting to addresses that are gone.
		if _, err := r.Store.PublishEndpoints(ctx, meta.Namespace, meta.Name, meta.UID, spec.Endpoints{}, nil); err != nil {
			return err
		}
		rest := slices.DeleteFunc(slices.Clone(meta.Finalizers), func(f string) bool { return f == FinalizerTasks })
		return r.Store.SetFinalizers(ctx, meta.Namespace, meta.Name, meta.UID, rest)
	case actCreate, actRelease, actRelaunch, actMove:
		if err := r.Store.PutInstance(ctx, c); err != nil {
			return err
		}
		// Something now waits for an offer: ask for offers again, and
		// clear the filters earlier declines set.
		r.revive(ctx)
		return nil
	case actAdopt:
		return r.Store.PutInstance(ctx, c)
	case actKill, actKillSuperseded:
		r.mark(&r.killed, c.TaskID)
		return r.Mesos.Kill(ctx, c.TaskID, c.AgentID)
	case actReconcileTask:
		r.mark(&r.asked, c.TaskID)
		return r.Mesos.ReconcileTasks(ctx, []framework.TaskRef{{ID: c.TaskID, AgentID: c.AgentID}})
	case actForget:
		return r.Store.DeleteInstance(ctx, c)
	}
	return fmt.Errorf("unknown action %s", a.kind)
}

// reapOrphans handles a cluster whose spec is gone: any task still running
// under its name belongs to nobody and is killed.
func (r *ClusterReconciler) reapOrphans(ctx context.Context, ns, name string) (Result, error) {
	r.BackupMetrics.Forget(ns, name)
	r.ClusterMetrics.Forget(ns, name)
	r.OperationMetrics.Forget(ns, name)
	r.ServerMetrics.Forget(ns, name)
	for _, t := range r.Mesos.TasksWithPrefix(TaskIDPrefix(ns, name)) {
		if t.Terminal() || r.recent(r.killed, t.ID, killRetry) {
			continue
		}
		r.logger().Info("killing an orphan task", "cluster", ns+"/"+name, "task", t.ID)
		r.mark(&r.killed, t.ID)
		if err := r.Mesos.Kill(ctx, t.ID, t.AgentID); err != nil {
			return Result{}, err
		}
	}
	return Result{}, nil
}

func (r *ClusterReconciler) recent(m map[string]time.Time, id string, within time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := m[id]
	return ok && r.now().Sub(at) < within
}

func (r *ClusterReconciler) mark(m *map[string]time.Time, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if *m == nil {
		*m = map[string]time.Time{}
	}
	now := r.now()
	for k, at := range *m { // keep the maps small
		if now.Sub(at) > time.Hour {
			delete(*m, k)
		}
	}
	(*m)[id] = now
}

func (r *ClusterReconciler) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

func (r *ClusterReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// lifecycleEvents are the actions recorded as events beyond operations and
// backups (which record their own): a cluster's creation, its instances
// created, released, moved and relaunched after their task ended (with
// why: the errors a user must see), a restore completed.
var lifecycleEvents = map[actionKind]string{
	actAddFinalizer: "ClusterCreated", actCreate: "InstanceCreated", actRelease: "InstanceReleased", actMove: "InstanceMoved",
	actRestored: "Restored", actRelaunch: "InstanceRelaunched", actAdopt: "TaskAdopted",
}

func (r *ClusterReconciler) lifecycleEvent(ctx context.Context, c *spec.MySQLCluster, a action) {
	reason, ok := lifecycleEvents[a.kind]
	if !ok {
		return
	}
	msg := a.why
	if a.kind == actAddFinalizer {
		msg = fmt.Sprintf("%d %s %s instance(s) wanted", specReplicas(c), c.Spec.Flavor, c.Spec.Version)
	}
	typ := spec.EventNormal
	if a.kind == actRelaunch || a.kind == actMove {
		typ = spec.EventWarning // its task ended: a crash, a lost agent
	}
	ev := spec.Event{Time: r.now(), Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, Type: typ,
		Reason: reason, Instance: instanceName(a.inst), Message: msg}
	if err := r.Store.RecordEvent(ctx, ev); err != nil {
		r.logger().Warn("cannot record an event", "cluster", c.Key(), "reason", reason, "err", err)
	}
}

// actionOperation is the failover or switchover (or backup) an action
// belongs to, for the log; "" for none.
func actionOperation(c *spec.MySQLCluster, a action) string {
	switch {
	case a.op != nil:
		return a.op.ID
	case a.job != nil:
		return "backup-" + a.job.ID
	case c.Status.Operation != nil:
		return c.Status.Operation.ID
	}
	return ""
}

func instanceName(inst *store.Instance) string {
	if inst == nil {
		return ""
	}
	return inst.Name()
}

// TaskIDPrefix starts the id of every task of a cluster; task ids are
// "<namespace>.<name>.<ordinal>.<launch>". Names and namespaces are DNS
// labels, so the dots separate unambiguously.
func TaskIDPrefix(ns, name string) string { return ns + "." + name + "." }

// ClusterOfTask returns the cluster key ("namespace/name") of a task id.
func ClusterOfTask(taskID string) (string, bool) {
	parts := strings.Split(taskID, ".")
	if len(parts) != 4 {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}
