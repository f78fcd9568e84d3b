package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

const sigKILL = syscall.SIGKILL

type execState int

const (
	execRegistering execState = iota // launched, not subscribed yet
	execRunning                      // subscribed at least once
	execTerminating                  // SHUTDOWN sent / being killed
	execTerminated                   // process gone
)

func (s execState) String() string {
	return [...]string{"REGISTERING", "RUNNING", "TERMINATING", "TERMINATED"}[s]
}

// agentExecutor is one executor (one container run) of a framework.
type agentExecutor struct {
	fw          *agentFramework
	info        mesos.ExecutorInfo
	containerID string
	directory   string
	// commandTask marks the built-in command executor of one command task.
	commandTask bool
	state       execState
	queued      []launchUnit          // tasks not yet delivered to the executor
	tasks       map[string]*agentTask // live tasks (queued or launched) and terminal ones not yet acknowledged
	completed   []*agentTask          // for /state
	conn        *execConn             // current SUBSCRIBE stream
	proc        *procEntry            // the process, once launched
	// recovered is set for executors recovered from a checkpoint until they
	// re-subscribe.
	recovered bool
	// exitReason and exitMessage describe why the agent killed the executor;
	// tasks still live when it exits fail with them.
	exitReason  mesos.TaskStatus_Reason
	exitMessage string
	regTimer    *time.Timer
	killTimer   *time.Timer
	fetchCancel context.CancelFunc
	links       []string // volume symlinks in the sandbox
	cmd         *commandRun
}

type launchUnit struct {
	Tasks []mesos.TaskInfo `json:"tasks"`
	Group bool             `json:"group,omitempty"`
}

type agentTask struct {
	info     mesos.TaskInfo
	state    mesos.TaskState
	launched bool // delivered to the executor (or an update was seen)
	statuses []mesos.TaskStatus
}

func (ex *agentExecutor) id() string { return ex.info.ExecutorID.Value }

func (ex *agentExecutor) stopTimers() {
	if ex.regTimer != nil {
		ex.regTimer.Stop()
	}
	if ex.killTimer != nil {
		ex.killTimer.Stop()
	}
	if ex.cmd != nil && ex.cmd.killTimer != nil {
		ex.cmd.killTimer.Stop()
	}
}

func (ex *agentExecutor) cancelFetch() {
	if ex.fetchCancel != nil {
		ex.fetchCancel()
	}
}

func (ex *agentExecutor) liveTaskCount() int {
	n := 0
	for _, t := range ex.tasks {
		if !isTerminalState(t.state) {
			n++
		}
	}
	return n
}

// ---- process table ------------------------------------------------------

// procEntry is a started process. Every process started by any agent of
// this OS process is reaped by one goroutine and registered in procTable by
// pid, so an Agent that recovers after a simulated restart (Close(false)
// then NewAgent in the same OS process) finds the executors it checkpointed,
// can signal them, and learns their real wait status. When the pid is not in
// the table (the whole dev cluster restarted), the process is no child of
// ours: it is watched by polling kill(pid, 0), its identity checked against
// the start time recorded in /proc/<pid>/stat, and its wait status is
// unknown (reported as 0).
type procEntry struct {
	pid    int
	start  uint64 // start time from /proc/<pid>/stat, to detect pid reuse
	proc   Process
	done   chan struct{}
	status syscall.WaitStatus
	known  bool // status is the real wait status
}

var procTable = struct {
	sync.Mutex
	m map[int]*procEntry
}{m: map[int]*procEntry{}}

func trackProcess(p Process) *procEntry {
	e := &procEntry{pid: p.Pid(), start: procStartTime(p.Pid()), proc: p, done: make(chan struct{})}
	procTable.Lock()
	procTable.m[e.pid] = e
	procTable.Unlock()
	go func() {
		ws, err := p.Wait()
		e.status, e.known = ws, err == nil
		close(e.done)
	}()
	return e
}

// adoptProcess finds a checkpointed process again.
func adoptProcess(pid int, start uint64) *procEntry {
	procTable.Lock()
	e := procTable.m[pid]
	procTable.Unlock()
	if e != nil && (start == 0 || e.start == start) {
		return e
	}
	e = &procEntry{pid: pid, start: start, done: make(chan struct{})}
	if pid <= 0 || syscall.Kill(pid, 0) != nil || (start != 0 && procStartTime(pid) != start) {
		close(e.done)
		return e
	}
	go func() {
		for {
			time.Sleep(100 * time.Millisecond)
			if syscall.Kill(pid, 0) != nil || procStartTime(pid) != start {
				close(e.done)
				return
			}
		}
	}()
	return e
}

// release forgets an exited process once an agent handled its exit.
func (e *procEntry) release() {
	procTable.Lock()
	if procTable.m[e.pid] == e {
		delete(procTable.m, e.pid)
	}
	procTable.Unlock()
}

func (e *procEntry) exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// signal signals the process group.
func (e *procEntry) signal(sig syscall.Signal) error {
	if e.exited() {
		return nil
	}
	if e.proc != nil {
		return e.proc.Signal(sig)
	}
	return syscall.Kill(-e.pid, sig)
}

func procStartTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(fields[19], 10, 64)
	return v
}

// ---- launching ----------------------------------------------------------

func (a *Agent) frameworkLocked(info mesos.FrameworkInfo) *agentFramework {
	id := info.GetID().GetValue()
	fw := a.frameworks[id]
	if fw == nil {
		fw = &agentFramework{info: info, executors: map[string]*agentExecutor{}}
		a.frameworks[id] = fw
	} else {
		fw.info = info
	}
	return fw
}

// runTasksLocked handles msgRunTasks.
func (a *Agent) runTasksLocked(m msgRunTasks) {
	if m.Framework.ID == nil {
		switch {
		case m.Executor != nil && m.Executor.FrameworkID != nil:
			m.Framework.ID = m.Executor.FrameworkID
		default:
			a.log.Error("run tasks without framework id")
			return
		}
	}
	fw := a.frameworkLocked(m.Framework)
	fw.terminating = false
	if m.Executor == nil {
		for _, t := range m.Tasks {
			a.launchCommandTaskLocked(fw, t)
		}
		return
	}
	info := *m.Executor
	if info.FrameworkID == nil {
		info.FrameworkID = m.Framework.ID
	}
	ex := fw.executors[info.ExecutorID.Value]
	if ex != nil && ex.state == execTerminated {
		ex = nil // a new run of the same executor id
	}
	if ex != nil && ex.state == execTerminating {
		for _, t := range m.Tasks {
			state := mesos.TASK_LOST
			if fw.hasCapability(mesos.FrameworkInfo_Capability_PARTITION_AWARE) {
				state = mesos.TASK_DROPPED
			}
			ex.tasks[t.TaskID.Value] = &agentTask{info: t, state: mesos.TASK_STAGING}
			a.ckTaskLocked(ex, t.TaskID.Value)
			a.statusUpdateLocked(fw, ex, agentStatus(t.TaskID.Value, state, mesos.REASON_EXECUTOR_TERMINATED,
				"Executor terminating"))
		}
		return
	}
	start := ex == nil
	if start {
		var err error
		ex, err = a.newExecutorLocked(fw, info, false)
		if err != nil {
			a.failLaunchLocked(fw, info, m.Tasks, err)
			return
		}
	}
	unit := launchUnit{Tasks: m.Tasks, Group: m.Group}
	for _, t := range m.Tasks {
		ex.tasks[t.TaskID.Value] = &agentTask{info: t, state: mesos.TASK_STAGING}
		a.ckTaskLocked(ex, t.TaskID.Value)
		ex.links = append(ex.links, a.linkVolumes(ex.directory, t.Resources)...)
	}
	ex.queued = append(ex.queued, unit)
	if start {
		// Queued first, so that the container is sized for these tasks.
		a.startExecutorLocked(ex)
	} else {
		// As Mesos' agent, the container grows before the tasks reach
		// the executor.
		a.updateContainerLocked(ex)
	}
	if ex.state == execRunning && ex.conn != nil {
		a.deliverQueuedLocked(ex)
	}
	if fw.checkpoint() {
		a.saveCheckpointLocked()
	}
}

// failLaunchLocked fails tasks whose executor could not even be created.
func (a *Agent) failLaunchLocked(fw *agentFramework, info mesos.ExecutorInfo, tasks []mesos.TaskInfo, err error) {
	a.log.Error("executor launch failed", "executor", info.ExecutorID.Value, "err", err)
	ex := &agentExecutor{fw: fw, info: info, tasks: map[string]*agentTask{}, state: execTerminated}
	for _, t := range tasks {
		ex.tasks[t.TaskID.Value] = &agentTask{info: t, state: mesos.TASK_STAGING}
		a.statusUpdateLocked(fw, ex, agentStatus(t.TaskID.Value, mesos.TASK_FAILED,
			mesos.REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch container: "+err.Error()))
	}
	fw.executors[info.ExecutorID.Value] = ex
}

// newExecutorLocked creates the executor and its sandbox,
// <work>/slaves/<agent>/frameworks/<fw>/executors/<exec>/runs/<container>.
func (a *Agent) newExecutorLocked(fw *agentFramework, info mesos.ExecutorInfo, command bool) (*agentExecutor, error) {
	containerID := uuid.NewString()
	dir := filepath.Join(a.cfg.WorkDir, "slaves", a.info.GetID().GetValue(), "frameworks", fw.id(),
		"executors", info.ExecutorID.Value, "runs", containerID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ex := &agentExecutor{
		fw:          fw,
		info:        info,
		containerID: containerID,
		directory:   dir,
		commandTask: command,
		tasks:       map[string]*agentTask{},
	}
	if old := fw.executors[info.ExecutorID.Value]; old != nil {
		fw.completedExecutors = appendCapped(fw.completedExecutors, old, 50)
	}
	fw.executors[info.ExecutorID.Value] = ex
	return ex, nil
}

func appendCapped[T any](s []T, v T, max int) []T {
	s = append(s, v)
	if len(s) > max {
		s = s[len(s)-max:]
	}
	return s
}

// executorEnv is the environment of §2.3 given to every executor.
func (a *Agent) executorEnv(ex *agentExecutor) []string {
	fw := ex.fw
	grace := a.cfg.Timeouts.ExecutorShutdownGrace
	if gp := ex.info.GetShutdownGracePeriod(); gp != nil {
		grace = time.Duration(gp.Nanoseconds)
	}
	env := os.Environ()
	add := func(k, v string) { env = append(env, k+"="+v) }
	add("MESOS_FRAMEWORK_ID", fw.id())
	add("MESOS_EXECUTOR_ID", ex.id())
	add("MESOS_DIRECTORY", ex.directory)
	add("MESOS_SANDBOX", ex.directory)
	add("MESOS_AGENT_ENDPOINT", a.endpoint())
	add("MESOS_SLAVE_ID", a.info.GetID().GetValue())
	add("MESOS_SLAVE_PID", "slave(1)@"+a.endpoint())
	add("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", stoutDuration(grace))
	add("MESOS_HTTP_COMMAND_EXECUTOR", "0")
	add("LIBPROCESS_PORT", "0")
	if fw.checkpoint() {
		add("MESOS_CHECKPOINT", "1")
		add("MESOS_RECOVERY_TIMEOUT", stoutDuration(15*time.Minute))
		add("MESOS_SUBSCRIPTION_BACKOFF_MAX", stoutDuration(a.cfg.Timeouts.ExecutorReregistration))
	} else {
		add("MESOS_CHECKPOINT", "0")
	}
	return append(env, commandEnv(ex.info.Command)...)
}

func commandEnv(c *mesos.CommandInfo) []string {
	var env []string
	if c == nil || c.Environment == nil {
		return nil
	}
	for _, v := range c.Environment.Variables {
		if v.Value != nil {
			env = append(env, v.Name+"="+*v.Value)
		}
	}
	return env
}

// commandArgv turns a CommandInfo into (path, argv): /bin/sh -c value when
// shell (the default), else value exec'ed with arguments as argv.
func commandArgv(c *mesos.CommandInfo) (string, []string, error) {
	if c == nil || c.Value == nil {
		return "", nil, fmt.Errorf("no command")
	}
	if c.Shell == nil || *c.Shell {
		return "/bin/sh", []string{"/bin/sh", "-c", *c.Value}, nil
	}
	argv := c.Arguments
	if len(argv) == 0 {
		argv = []string{*c.Value}
	}
	return *c.Value, argv, nil
}

// fetchUser is the user a command's URIs are fetched (and cached) for: the
// command's own, else its framework's, as in Mesos.
func fetchUser(c *mesos.CommandInfo, fw *agentFramework) string {
	if u := c.GetUser(); u != "" {
		return u
	}
	return fw.info.GetUser()
}

// startExecutorLocked fetches the executor's URIs and starts its process in
// the background, then arms the registration timeout.
func (a *Agent) startExecutorLocked(ex *agentExecutor) {
	ex.state = execRegistering
	ctx, cancel := context.WithCancel(context.Background())
	ex.fetchCancel = cancel
	env := a.executorEnv(ex)
	var uris []mesos.CommandInfo_URI
	if ex.info.Command != nil {
		uris = ex.info.Command.URIs
	}
	command := ex.info.Command
	user := fetchUser(command, ex.fw) // the framework's info changes under the lock
	ex.links = append(ex.links, a.linkVolumes(ex.directory, ex.info.Resources)...)
	limits := ex.limits()
	go func() {
		err := fetchURIs(ctx, uris, ex.directory, a.fetchCache, user)
		var proc *procEntry
		if err == nil {
			var path string
			var argv []string
			path, argv, err = commandArgv(command)
			if err == nil {
				var p Process
				p, err = a.launcher.Launch(ProcessSpec{
					Path: path, Argv: argv, Env: env, Dir: ex.directory,
					Stdout:      filepath.Join(ex.directory, "stdout"),
					Stderr:      filepath.Join(ex.directory, "stderr"),
					ContainerID: ex.containerID, Limits: limits,
				})
				if err == nil {
					proc = trackProcess(p)
				}
			}
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed {
			// The agent went away while launching: like a crashed agent's
			// half-made container, the process is destroyed.
			if proc != nil {
				_ = proc.signal(sigKILL)
			}
			return
		}
		if err != nil {
			if ex.state != execTerminated {
				ex.exitReason = mesos.REASON_CONTAINER_LAUNCH_FAILED
				ex.exitMessage = "Failed to launch container: " + err.Error()
				a.executorExitedLocked(ex, 0, false)
			}
			return
		}
		ex.proc = proc
		if ex.state == execTerminated || ex.state == execTerminating && ex.exitReason != 0 {
			_ = proc.signal(sigKILL)
		}
		// Tasks added or ended while it was starting.
		a.updateContainerLocked(ex)
		a.log.Info("executor started", "framework", ex.fw.id(), "executor", ex.id(), "pid", proc.pid)
		if ex.fw.checkpoint() {
			a.saveCheckpointLocked()
		}
		a.watchLocked(ex)
	}()
	if t := a.cfg.Timeouts.ExecutorRegistration; t > 0 {
		ex.regTimer = time.AfterFunc(t, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.closed || ex.state != execRegistering {
				return
			}
			a.log.Warn("executor did not register in time", "executor", ex.id())
			a.destroyLocked(ex, mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
				"Executor did not register within "+stoutDuration(t))
		})
	}
}

// watchLocked waits for the executor's process to exit in the background.
func (a *Agent) watchLocked(ex *agentExecutor) {
	p := ex.proc
	go func() {
		<-p.done
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed {
			return
		}
		p.release()
		if ex.proc != p {
			return
		}
		if l, ok := p.proc.(limited); ok && l.Limitation() == "memory" {
			ex.exitReason, ex.exitMessage = mesos.REASON_CONTAINER_LIMITATION_MEMORY, "Memory limit exceeded"
		}
		if ex.commandTask {
			a.commandExitedLocked(ex)
			return
		}
		a.executorExitedLocked(ex, p.status, p.known)
	}()
}

// destroyLocked kills the executor's process group now; its live tasks fail
// with reason when it is gone.
func (a *Agent) destroyLocked(ex *agentExecutor, reason mesos.TaskStatus_Reason, message string) {
	if ex.state == execTerminated {
		return
	}
	if ex.exitReason == 0 {
		ex.exitReason, ex.exitMessage = reason, message
	}
	ex.state = execTerminating
	ex.cancelFetch()
	if ex.proc == nil {
		// Not started yet (still fetching): nothing to wait for.
		a.executorExitedLocked(ex, 0, false)
		return
	}
	_ = ex.proc.signal(sigKILL)
}

// executorExitedLocked handles the end of an executor: live tasks fail
// (TASK_FAILED, SOURCE_AGENT, REASON_EXECUTOR_TERMINATED unless the agent
// killed it for a reason of its own), the master hears msgExitedExecutor
// (custom executors only: real masters send no FAILURE for command
// executors), and the executor is forgotten once its updates are
// acknowledged.
func (a *Agent) executorExitedLocked(ex *agentExecutor, status syscall.WaitStatus, known bool) {
	if ex.state == execTerminated {
		return
	}
	a.log.Info("executor exited", "framework", ex.fw.id(), "executor", ex.id(), "status", int32(status), "known", known)
	ex.state = execTerminated
	ex.stopTimers()
	ex.cancelFetch()
	if ex.conn != nil {
		ex.conn.close()
		ex.conn = nil
	}
	a.unlinkVolumes(ex)
	fw := ex.fw
	reason, message := ex.exitReason, ex.exitMessage
	if reason == 0 {
		reason, message = mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated"
	}
	ex.queued = nil
	if !fw.terminating {
		for _, id := range sortedTaskIDs(ex) {
			t := ex.tasks[id]
			if isTerminalState(t.state) {
				continue
			}
			a.statusUpdateLocked(fw, ex, agentStatus(id, mesos.TASK_FAILED, reason, message))
		}
		if !ex.commandTask && a.link != nil && a.info.ID != nil {
			a.link.sendToMaster(msgExitedExecutor{
				AgentID:     *a.info.ID,
				FrameworkID: mesos.FrameworkID{Value: fw.id()},
				ExecutorID:  ex.info.ExecutorID,
				Status:      int32(status),
			})
		}
	}
	a.maybeRemoveExecutorLocked(ex)
	if fw.checkpoint() {
		a.saveCheckpointLocked()
	}
}

func sortedTaskIDs(ex *agentExecutor) []string {
	ids := make([]string, 0, len(ex.tasks))
	for id := range ex.tasks {
		ids = append(ids, id)
	}
	// insertion sort; few tasks per executor
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// taskCompletedLocked moves a task whose terminal update was acknowledged
// to the executor's completed tasks.
func (a *Agent) taskCompletedLocked(fw *agentFramework, taskID string) {
	for _, ex := range fw.executors {
		if t := ex.tasks[taskID]; t != nil && isTerminalState(t.state) {
			delete(ex.tasks, taskID)
			a.ckTaskLocked(ex, taskID)
			ex.completed = appendCapped(ex.completed, t, 100)
			a.maybeRemoveExecutorLocked(ex)
			if ex.commandTask && ex.state != execTerminated && ex.cmd != nil && ex.cmd.finished {
				// The command executor exits once its terminal update is acknowledged.
				ex.state = execTerminated
				a.maybeRemoveExecutorLocked(ex)
			}
			return
		}
	}
}

// maybeRemoveExecutorLocked forgets a terminated executor once no task of it
// has unacknowledged updates.
func (a *Agent) maybeRemoveExecutorLocked(ex *agentExecutor) {
	if ex.state != execTerminated {
		return
	}
	fw := ex.fw
	for id, t := range ex.tasks {
		if a.pendingUpdatesLocked(fw.id(), id) {
			return
		}
		delete(ex.tasks, id)
		a.ckTaskLocked(ex, id)
		ex.completed = appendCapped(ex.completed, t, 100)
	}
	if fw.executors[ex.id()] == ex {
		delete(fw.executors, ex.id())
		fw.completedExecutors = appendCapped(fw.completedExecutors, ex, 50)
	}
	a.maybeRemoveFrameworkLocked(fw)
}

func (a *Agent) maybeRemoveFrameworkLocked(fw *agentFramework) {
	if len(fw.executors) > 0 || a.frameworks[fw.id()] != fw {
		return
	}
	for k := range a.streams {
		if k.framework == fw.id() {
			return
		}
	}
	delete(a.frameworks, fw.id())
	a.completedFws = appendCapped(a.completedFws, fw, 50)
}

// deliverQueuedLocked sends the queued tasks to a subscribed executor.
func (a *Agent) deliverQueuedLocked(ex *agentExecutor) {
	// Delivery sets launched on the queued tasks, and an executor
	// re-subscribing after an agent restart may add tasks: rewrite them all.
	a.ckRescanLocked(ex)
	for _, u := range ex.queued {
		if u.Group {
			var tasks []mesos.TaskInfo
			for _, t := range u.Tasks {
				if at := ex.tasks[t.TaskID.Value]; at != nil && !isTerminalState(at.state) {
					at.launched = true
					tasks = append(tasks, t)
				}
			}
			if len(tasks) > 0 {
				ex.conn.send(&executor.Event{Type: executor.Event_LAUNCH_GROUP,
					LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{Tasks: tasks}}})
			}
			continue
		}
		for _, t := range u.Tasks {
			if at := ex.tasks[t.TaskID.Value]; at != nil && !isTerminalState(at.state) {
				at.launched = true
				ex.conn.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: t}})
			}
		}
	}
	ex.queued = nil
}

// ---- kill, shutdown, messages ------------------------------------------

func (a *Agent) findTaskLocked(fwID, taskID string) (*agentFramework, *agentExecutor, *agentTask) {
	fw := a.frameworks[fwID]
	if fw == nil {
		return nil, nil, nil
	}
	for _, ex := range fw.executors {
		if t := ex.tasks[taskID]; t != nil {
			return fw, ex, t
		}
	}
	return fw, nil, nil
}

func (a *Agent) killTaskLocked(m msgKillTask) {
	fw, ex, t := a.findTaskLocked(m.FrameworkID.Value, m.TaskID.Value)
	if t == nil {
		a.log.Warn("cannot kill unknown task", "framework", m.FrameworkID.Value, "task", m.TaskID.Value)
		return
	}
	if isTerminalState(t.state) {
		return
	}
	if ex.commandTask {
		a.killCommandLocked(ex, m.KillPolicy)
		return
	}
	if !t.launched {
		// Still queued: it never reaches the executor.
		a.removeQueuedLocked(ex, m.TaskID.Value)
		a.statusUpdateLocked(fw, ex, agentStatus(m.TaskID.Value, mesos.TASK_KILLED,
			mesos.REASON_TASK_KILLED_DURING_LAUNCH, "Killed before delivery to the executor"))
		if ex.state == execRegistering && ex.liveTaskCount() == 0 {
			// An executor left without tasks is not needed any more.
			a.destroyLocked(ex, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated")
		}
		return
	}
	if ex.conn != nil {
		ev := &executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: m.TaskID}}
		if m.KillPolicy != nil {
			ev.Kill.KillPolicy = m.KillPolicy
		} else if t.info.KillPolicy != nil {
			ev.Kill.KillPolicy = t.info.KillPolicy
		}
		ex.conn.send(ev)
	}
}

func (a *Agent) removeQueuedLocked(ex *agentExecutor, taskID string) {
	var out []launchUnit
	for _, u := range ex.queued {
		var tasks []mesos.TaskInfo
		for _, t := range u.Tasks {
			if t.TaskID.Value != taskID {
				tasks = append(tasks, t)
			}
		}
		if len(tasks) > 0 {
			u.Tasks = tasks
			out = append(out, u)
		}
	}
	ex.queued = out
}

// shutdownExecutorLocked sends SHUTDOWN and kills the process group if it
// is still there after the shutdown grace period.
func (a *Agent) shutdownExecutorLocked(fwID, execID string) {
	fw := a.frameworks[fwID]
	if fw == nil {
		return
	}
	ex := fw.executors[execID]
	if ex == nil || ex.state >= execTerminating {
		return
	}
	a.shutdownLocked(ex)
}

func (a *Agent) shutdownLocked(ex *agentExecutor) {
	if ex.commandTask {
		a.killCommandLocked(ex, nil)
		return
	}
	if ex.state == execRegistering {
		a.destroyLocked(ex, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated")
		return
	}
	ex.state = execTerminating
	if ex.conn != nil {
		ex.conn.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	}
	grace := a.cfg.Timeouts.ExecutorShutdownGrace
	if gp := ex.info.GetShutdownGracePeriod(); gp != nil {
		grace = time.Duration(gp.Nanoseconds)
	}
	ex.killTimer = time.AfterFunc(grace, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed || ex.state == execTerminated {
			return
		}
		a.log.Info("executor still alive after shutdown grace period, killing", "executor", ex.id())
		a.destroyLocked(ex, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated")
	})
}

// shutdownFrameworkLocked kills everything of a removed framework; its
// tasks get no further updates (the master already accounted for them).
func (a *Agent) shutdownFrameworkLocked(fwID string) {
	fw := a.frameworks[fwID]
	if fw == nil {
		return
	}
	fw.terminating = true
	a.dropStreamsLocked(fwID)
	for _, ex := range fw.executors {
		if ex.state < execTerminating || ex.commandTask {
			a.shutdownLocked(ex)
		}
		if ex.state == execTerminated {
			a.maybeRemoveExecutorLocked(ex)
		}
	}
	a.maybeRemoveFrameworkLocked(fw)
	if fw.checkpoint() {
		a.saveCheckpointLocked()
	}
}

func (a *Agent) frameworkMessageLocked(m msgFrameworkToExecutor) {
	fw := a.frameworks[m.FrameworkID.Value]
	if fw == nil {
		return
	}
	ex := fw.executors[m.ExecutorID.Value]
	if ex == nil || ex.conn == nil {
		a.log.Warn("dropping framework message for an executor that is not subscribed", "executor", m.ExecutorID.Value)
		return
	}
	ex.conn.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: m.Data}})
}

// taskReportLocked is the master's view of a task for re-registration.
func (a *Agent) taskReportLocked(fw *agentFramework, ex *agentExecutor, t *agentTask) mesos.Task {
	task := mesos.Task{
		Name:        t.info.Name,
		TaskID:      t.info.TaskID,
		FrameworkID: mesos.FrameworkID{Value: fw.id()},
		AgentID:     mesos.AgentID{Value: a.info.GetID().GetValue()},
		State:       t.state.Enum(),
		Resources:   t.info.Resources,
		Statuses:    append([]mesos.TaskStatus(nil), t.statuses...),
		Labels:      t.info.Labels,
		Discovery:   t.info.Discovery,
		Container:   t.info.Container,
		HealthCheck: t.info.HealthCheck,
		KillPolicy:  t.info.KillPolicy,
	}
	if !ex.commandTask {
		task.ExecutorID = &mesos.ExecutorID{Value: ex.id()}
	}
	if s := a.streams[streamKey{fw.id(), t.info.TaskID.Value}]; s != nil && len(s.pending) > 0 {
		task.StatusUpdateState = s.pending[0].State
		task.StatusUpdateUUID = s.pending[0].UUID
	}
	return task
}

// limits are what the executor's container may use: the executor's
// resources plus its live (queued or launched, not terminal) tasks', as
// Mesos sizes an executor's container (Executor::allocatedResources).
func (ex *agentExecutor) limits() *Limits {
	rs := [][]mesos.Resource{ex.info.Resources}
	for _, t := range ex.tasks {
		if !isTerminalState(t.state) {
			rs = append(rs, t.info.Resources)
		}
	}
	return limitsOf(rs...)
}

// updateContainerLocked sets the limits of ex's running container to what
// its executor and live tasks hold, as Mesos' agent calls
// Containerizer::update when a task is added to a running executor or ends.
// A command task's container ends with its task: it is never resized.
func (a *Agent) updateContainerLocked(ex *agentExecutor) {
	u, ok := a.launcher.(containerUpdater)
	if !ok || ex.commandTask || ex.proc == nil || ex.proc.exited() || ex.state == execTerminated {
		return
	}
	lim := ex.limits()
	if err := u.Update(ex.containerID, *lim); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.log.Warn("container limits not updated", "executor", ex.id(), "container", ex.containerID, "err", err)
		return
	}
	a.log.Debug("container limits updated", "executor", ex.id(), "container", ex.containerID, "cpus", lim.CPUs, "mem", lim.MemBytes)
}
