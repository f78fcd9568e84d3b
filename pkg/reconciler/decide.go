package reconciler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
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

	// A task reported ended that runs after all (revivedTaskAction).
	actAdopt          actionKind = "AdoptTask"          // Pending, its task alive on its agent → Launched with it
	actKillSuperseded actionKind = "KillSupersededTask" // an earlier task of an instance alive beside its current one
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
	stored    *store.ClusterState // what the pass read, to write the status from
	instances []*store.Instance
	task      func(id string) (framework.Task, bool)
	// tasks is every task of the cluster Mesos told of (the framework's
	// table), instances', backups' and the archiver's.
	tasks []framework.Task
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
	out = append(out, supersededTaskActions(w)...)
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
		if a, ok := revivedTaskAction(w, inst); ok {
			return a, true
		}
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

// revivedTaskAction handles a Pending instance whose last task Mesos
// reports alive after it reported it ended. A terminal answer can race the
// task's launch: a RECONCILE or KILL that reaches the master before the
// ACCEPT (calls travel on separate connections) is answered TASK_GONE,
// and the task's own updates follow. The instance must neither lose the task nor get a
// second one: on its own agent and volume the task is adopted back (if the
// launcher writes a relaunch at the same time, one of the two writes
// fails); a task the instance has moved away from is killed.
func revivedTaskAction(w world, inst *store.Instance) (action, bool) {
	if inst.TaskID == "" {
		return action{}, false
	}
	t, known := w.task(inst.TaskID)
	if !known || t.Terminal() {
		return action{}, false
	}
	if inst.AgentID != "" && inst.PersistenceID != "" && t.AgentID == inst.AgentID {
		next := *inst
		next.Phase = store.InstanceLaunched
		next.Since = w.now
		next.NotBefore = time.Time{}
		return action{kind: actAdopt, inst: &next,
			why: fmt.Sprintf("task %s, reported ended, is %s on agent %s after all: the instance keeps it", t.ID, t.State, t.AgentID)}, true
	}
	if w.recentlyKilled(t.ID) {
		return action{}, false
	}
	stray := *inst
	stray.AgentID = t.AgentID
	return action{kind: actKillSuperseded, inst: &stray,
		why: fmt.Sprintf("task %s, reported ended, is %s on agent %s after all, but the instance left that agent or volume", t.ID, t.State, t.AgentID)}, true
}

// supersededTaskActions kills tasks of an instance that Mesos reports alive
// although the instance's record names a later launch: a task reported
// ended (see revivedTaskAction) that turned out alive after its instance
// was launched again. One instance never runs two tasks (two mysqld with
// one server id, possibly on one volume).
func supersededTaskActions(w world) []action {
	var out []action
	for _, t := range slices.SortedFunc(slices.Values(w.tasks), func(a, b framework.Task) int { return strings.Compare(a.ID, b.ID) }) {
		if t.Terminal() || w.recentlyKilled(t.ID) {
			continue
		}
		ordinal, launch, ok := instanceTaskOf(t.ID)
		if !ok {
			continue
		}
		inst := w.instanceRecord(ordinal)
		if inst.TaskID == "" || inst.TaskID == t.ID || launch >= inst.Launches {
			continue
		}
		stray := *inst
		stray.TaskID, stray.AgentID = t.ID, t.AgentID
		out = append(out, action{kind: actKillSuperseded, inst: &stray,
			why: fmt.Sprintf("task %s (launch %d) is %s, but the instance runs launch %d (task %s) now", t.ID, launch, t.State, inst.Launches, inst.TaskID)})
	}
	return out
}

// instanceTaskOf parses the id of an instance's task,
// "<ns>.<name>.<ordinal>.<launch>-<random>" (see Launcher.launch): its
// ordinal and launch number. False for the cluster's other tasks (backups,
// the archiver).
func instanceTaskOf(taskID string) (ordinal, launch int, ok bool) {
	parts := strings.Split(taskID, ".")
	if len(parts) != 4 {
		return 0, 0, false
	}
	ordinal, err := strconv.Atoi(parts[2])
	if err != nil {
		return 0, 0, false
	}
	n, _, _ := strings.Cut(parts[3], "-")
	if launch, err = strconv.Atoi(n); err != nil {
		return 0, 0, false
	}
	return ordinal, launch, true
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
