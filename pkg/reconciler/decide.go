package reconciler

import (
	"fmt"
	"slices"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// FinalizerTasks keeps a cluster's keys until its tasks are killed and its
// volumes and reservations released.
const FinalizerTasks = "mysos.io/tasks"

// actionKind names the one thing a pass may do.
type actionKind string

// The actions, in the order a pass considers them (docs/reconciler.md).
const (
	actAddFinalizer    actionKind = "AddFinalizer"
	actRelease         actionKind = "ReleaseInstance"  // record → Releasing (surplus, or the cluster is deleted)
	actCreate          actionKind = "CreateInstance"   // new record, Pending
	actRelaunch        actionKind = "RelaunchInstance" // task over → Pending on its own agent and volume
	actMove            actionKind = "MoveInstance"     // pinned too long → Pending anywhere, fresh volume
	actKill            actionKind = "KillTask"
	actReconcileTask   actionKind = "ReconcileTask" // ask Mesos about a task it never mentioned
	actForget          actionKind = "DeleteInstance"
	actElectPrimary    actionKind = "ElectPrimary" // record status.currentPrimary
	actPromote         actionKind = "PromotePrimary"
	actDetach          actionKind = "DetachPrimary" // forget the new primary's old source
	actReplicate       actionKind = "ConfigureReplica"
	actSemiSync        actionKind = "SetSemiSync"
	actCreateDatabase  actionKind = "CreateDatabase"
	actRemoveFinalizer actionKind = "RemoveFinalizer"
)

// action is a decision: what to do and, for record changes, the record as
// it must be written.
type action struct {
	kind actionKind
	inst *store.Instance
	db   string // for CreateDatabase
	// op is the operation as an operation action leaves it (nil: none).
	op *spec.Operation
	// gtid is what CatchUp waits for.
	gtid mysql.GTIDSet
	// job is the backup job a backup action writes or acts on; archiver
	// the archiver record an archiver action writes or acts on.
	job      *store.BackupJob
	archiver *store.Archiver
	why      string
}

func (a action) String() string {
	if a.inst == nil {
		return string(a.kind) + ": " + a.why
	}
	return fmt.Sprintf("%s %s: %s", a.kind, a.inst.Name(), a.why)
}

// Timing of the decisions; Config overrides them.
const (
	DefaultRelaunchTimeout = 5 * time.Minute
	DefaultReleaseTimeout  = 10 * time.Minute
	// unknownTaskGrace is how long a launched task may go unmentioned by
	// Mesos before the reconciler asks about it explicitly.
	unknownTaskGrace = 30 * time.Second
	// killRetry spaces repeated kills of a task that has not died.
	killRetry = 10 * time.Second
	// quickFailure: a task that ends sooner than this after its launch
	// counts towards crash-loop backoff. A mysqld that cannot start dies
	// within seconds; one killed after serving for a while is not looping,
	// and must come back at once to rejoin (a failover may be waiting for it).
	quickFailure = 10 * time.Second
)

// world is everything one pass observed.
type world struct {
	cluster   *spec.MySQLCluster
	instances []*store.Instance
	task      func(id string) (framework.Task, bool)
	// recentlyKilled and recentlyAsked report calls this process made lately.
	recentlyKilled func(taskID string) bool
	recentlyAsked  func(taskID string) bool
	// sqlDownSince: since when the task's mysqld has not answered.
	sqlDownSince func(taskID string) (time.Time, bool)
	now          time.Time
	subscribed   bool
	role         string // the role the framework serves
	timeouts     timeouts
	// servers is what each running instance's mysqld said, by ordinal;
	// nil when the workload runs no mysqld.
	servers   map[int]serverView
	passwords store.Passwords
	// tlsCA is what servers launched with TLS are verified with (PEM).
	tlsCA []byte
	// jobs are the cluster's backup jobs, oldest first; backupDestination
	// is where its backups go.
	jobs              []*store.BackupJob
	backupDestination string
	// archiver is the cluster's binlog archiver record, nil if none.
	archiver *store.Archiver
}

type timeouts struct{ relaunch, release time.Duration }

// instanceRecord is the observed record of an ordinal (an empty one if
// there is none).
func (w world) instanceRecord(ordinal int) *store.Instance {
	for _, inst := range w.instances {
		if inst.Ordinal == ordinal {
			return inst
		}
	}
	return &store.Instance{}
}

// decide is pure: the actions the world calls for, most urgent first. The
// reconciler performs the first.
func decide(w world) []action {
	c := w.cluster
	var out []action
	deleting := c.Metadata.DeletionTimestamp != nil
	if !deleting && !slices.Contains(c.Metadata.Finalizers, FinalizerTasks) {
		return []action{{kind: actAddFinalizer, why: "tasks will be launched"}}
	}
	replicas := 0
	if !deleting && w.role == c.Spec.Placement.Role && c.Spec.Replicas != nil {
		replicas = int(*c.Spec.Replicas)
	}
	have := map[int]bool{}
	for _, inst := range w.instances {
		have[inst.Ordinal] = true
		surplus := inst.Ordinal >= replicas || inst.ClusterUID != c.Metadata.UID
		// Scale-down never takes the primary; a switchover must move it
		// first (the failover issue).
		keep := !deleting && inst.Name() == c.Status.CurrentPrimary && inst.ClusterUID == c.Metadata.UID
		if inst.Phase != store.InstanceReleasing && surplus && !keep {
			if a, ok := drainBeforeRelease(w, inst, deleting); ok {
				out = append(out, a)
			}
		}
	}
	for ord := range replicas {
		if ord > 0 && restorePending(c) {
			break // replicas are seeded from the restored primary
		}
		if !have[ord] {
			out = append(out, action{kind: actCreate, inst: newInstance(c, ord, w.now), why: "wanted by spec.replicas"})
		}
	}
	out = append(out, operationActions(w)...)
	for _, inst := range w.instances {
		if a, ok := instanceAction(w, inst); ok {
			out = append(out, a)
		}
	}
	out = append(out, topologyActions(w)...)
	out = append(out, backupActions(w)...)
	out = append(out, archiverActions(w)...)
	if deleting && len(w.instances) == 0 && slices.Contains(c.Metadata.Finalizers, FinalizerTasks) {
		out = append(out, action{kind: actRemoveFinalizer, why: "every task, volume and reservation is gone"})
	}
	return out
}

func releaseAction(w world, inst *store.Instance, deleting bool) action {
	next := *inst
	next.Phase = store.InstanceReleasing
	next.Since = w.now
	why := "beyond spec.replicas"
	if deleting {
		why = "the cluster is being deleted"
	}
	return action{kind: actRelease, inst: &next, why: why}
}

// instanceAction is the step one instance needs, if any.
func instanceAction(w world, inst *store.Instance) (action, bool) {
	switch inst.Phase {
	case store.InstancePending:
		if inst.AgentID != "" && w.now.Sub(inst.Since) > w.timeouts.relaunch {
			next := *inst
			next.AgentID, next.Hostname, next.Domain, next.Port, next.PersistenceID = "", "", "", 0, ""
			next.Since = w.now
			return action{kind: actMove, inst: &next,
				why: fmt.Sprintf("no offer from agent %s for %s; its volume there is given up", inst.AgentID, w.timeouts.relaunch)}, true
		}
	case store.InstanceLaunched:
		t, known := w.task(inst.TaskID)
		switch {
		case !known && w.now.Sub(inst.Since) > unknownTaskGrace && !w.recentlyAsked(inst.TaskID):
			return action{kind: actReconcileTask, inst: inst, why: "Mesos has not reported the task yet"}, true
		case known && t.Terminal():
			return relaunchAction(w, inst, t), true
		}
	case store.InstanceReleasing:
		t, known := w.task(inst.TaskID)
		switch {
		case inst.TaskID != "" && (!known || !t.Terminal()):
			if w.recentlyKilled(inst.TaskID) {
				return action{}, false
			}
			return action{kind: actKill, inst: inst, why: "the instance is being released"}, true
		case inst.AgentID == "":
			return action{kind: actForget, inst: inst, why: "it never got resources"}, true
		case w.now.Sub(inst.Since) > w.timeouts.release:
			return action{kind: actForget, inst: inst,
				why: fmt.Sprintf("agent %s offered nothing back for %s; the reservation is left to garbage collection", inst.AgentID, w.timeouts.release)}, true
		}
	}
	return action{}, false
}

// relaunchAction puts an instance whose task ended back in line: on its
// own agent and volume, unless that agent is gone for good; after a
// backoff when its tasks keep dying young.
func relaunchAction(w world, inst *store.Instance, t framework.Task) action {
	next := *inst
	next.Phase = store.InstancePending
	next.Since = w.now
	why := fmt.Sprintf("task %s is %s (%s: %s)", inst.TaskID, t.State, t.Reason, t.Message)
	if w.now.Sub(inst.Since) < quickFailure {
		next.QuickFailures++
		next.NotBefore = w.now.Add(crashBackoff(next.QuickFailures))
		why += fmt.Sprintf("; it ended %d time(s) in a row within %s of launch, so the next launch waits until %s",
			next.QuickFailures, quickFailure, next.NotBefore.Format(time.RFC3339))
	} else {
		next.QuickFailures, next.NotBefore = 0, time.Time{}
	}
	if t.State == mesos.TASK_GONE_BY_OPERATOR {
		// The operator marked the agent gone: it never offers again.
		next.AgentID, next.Hostname, next.Domain, next.Port, next.PersistenceID = "", "", "", 0, ""
		return action{kind: actMove, inst: &next, why: why + "; its agent is gone, so it starts afresh elsewhere"}
	}
	return action{kind: actRelaunch, inst: &next, why: why}
}

// crashBackoff doubles from 2 s up to 2 min.
func crashBackoff(failures int) time.Duration {
	return min(2*time.Second<<min(failures-1, 10), 2*time.Minute)
}

// newInstance is the record of a new instance, with its request copied
// from the spec.
func newInstance(c *spec.MySQLCluster, ordinal int, now time.Time) *store.Instance {
	return &store.Instance{
		Namespace: c.Metadata.Namespace, Cluster: c.Metadata.Name, ClusterUID: c.Metadata.UID,
		Ordinal: ordinal, Phase: store.InstancePending, Since: now, Request: requestOf(&c.Spec),
	}
}

func requestOf(s *spec.ClusterSpec) store.InstanceRequest {
	cpus, _ := s.Resources.CPUs.MilliValue()
	mem, _ := s.Resources.Memory.MiB()
	disk, _ := s.Resources.Disk.MiB()
	r := store.InstanceRequest{
		CPUs: float64(cpus) / 1000, MemMiB: mem, DiskMiB: disk,
		Role: s.Placement.Role, SpreadKey: s.Placement.SpreadKey, MaxPerDomain: 1,
		Attributes: s.Placement.Attributes,
	}
	if s.Placement.MaxPerDomain != nil {
		r.MaxPerDomain = int(*s.Placement.MaxPerDomain)
	}
	return r
}
