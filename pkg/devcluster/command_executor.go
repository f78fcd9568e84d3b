package devcluster

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The built-in command executor runs a command task (TaskInfo.command, no
// executor). SIMPLIFICATION: real Mesos starts a separate mesos-executor
// process that talks to the agent; here the executor is a goroutine of the
// agent that launches the command itself through the Launcher, in the
// task's own sandbox and process group, and reports like Mesos' command
// executor: TASK_STARTING, TASK_RUNNING, then TASK_FINISHED / TASK_FAILED
// ("Command exited with status N", "Command terminated with signal S") or
// TASK_KILLED, all SOURCE_EXECUTOR with container_status.container_id, over
// the same reliable status update streams as custom executors. Its executor
// id is the task id, as in Mesos. A kill sends SIGTERM to the command's
// process group and SIGKILL after the kill policy's grace period (3s by
// default). Across an agent restart (checkpointing frameworks) the command
// process keeps running and the next Agent adopts it by pid and reports its
// end.

const defaultKillGrace = 3 * time.Second

type commandRun struct {
	killing   bool // kill requested
	started   bool // command process launched
	finished  bool // terminal update sent
	killTimer *time.Timer
}

// commandExecutorInfo is the ExecutorInfo Mesos generates for a command task.
func commandExecutorInfo(fw *agentFramework, t mesos.TaskInfo) mesos.ExecutorInfo {
	cmd := ""
	if t.Command != nil && t.Command.Value != nil {
		cmd = *t.Command.Value
		if t.Command.Shell == nil || *t.Command.Shell {
			short := cmd
			if len(short) > 15 {
				short = short[:15] + "..."
			}
			cmd = "sh -c '" + short + "'"
		}
	}
	return mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: t.TaskID.Value},
		FrameworkID: fw.info.ID,
		Name:        aptr("Command Executor (Task: " + t.TaskID.Value + ") (Command: " + cmd + ")"),
		Source:      aptr(t.TaskID.Value),
		Command:     &mesos.CommandInfo{Value: aptr("mesos-executor"), Shell: aptr(false)},
	}
}

func (a *Agent) launchCommandTaskLocked(fw *agentFramework, t mesos.TaskInfo) {
	info := commandExecutorInfo(fw, t)
	if old := fw.executors[info.ExecutorID.Value]; old != nil && old.state != execTerminated {
		a.log.Error("command task id already in use", "task", t.TaskID.Value)
		return
	}
	ex, err := a.newExecutorLocked(fw, info, true)
	if err != nil {
		a.failLaunchLocked(fw, info, []mesos.TaskInfo{t}, err)
		return
	}
	ex.cmd = &commandRun{}
	ex.state = execRunning
	ex.tasks[t.TaskID.Value] = &agentTask{info: t, state: mesos.TASK_STAGING, launched: true}
	ex.links = append(ex.links, a.linkVolumes(ex.directory, t.Resources)...)
	ctx, cancel := context.WithCancel(context.Background())
	ex.fetchCancel = cancel
	env := a.executorEnv(ex)
	env = append(env, commandEnv(t.Command)...)
	if fw.checkpoint() {
		a.saveCheckpointLocked()
	}
	go a.runCommand(ctx, ex, t, env, fetchUser(t.Command, fw))
}

func (a *Agent) commandStatus(ex *agentExecutor, state mesos.TaskState, message string) mesos.TaskStatus {
	st := mesos.TaskStatus{
		TaskID:     ex.tasks[ex.id()].info.TaskID,
		State:      state.Enum(),
		Source:     mesos.SOURCE_EXECUTOR.Enum(),
		ExecutorID: &mesos.ExecutorID{Value: ex.id()},
		UUID:       newUUID(),
		Timestamp:  nowTimestamp(),
	}
	if message != "" {
		st.Message = aptr(message)
	}
	return st
}

// runCommand fetches and runs a command task; user (read under the lock by
// the caller) is whom its URIs are fetched for.
func (a *Agent) runCommand(ctx context.Context, ex *agentExecutor, t mesos.TaskInfo, env []string, user string) {
	var uris []mesos.CommandInfo_URI
	if t.Command != nil {
		uris = t.Command.URIs
	}
	fetchErr := fetchURIs(ctx, uris, ex.directory, a.fetchCache, user)

	a.mu.Lock()
	if a.closed || ex.state == execTerminated {
		a.mu.Unlock()
		return
	}
	fw := ex.fw
	if fetchErr != nil && ex.cmd.killing {
		ex.cmd.finished = true
		a.statusUpdateLocked(fw, ex, a.commandStatus(ex, mesos.TASK_KILLED, "Command was killed before it started"))
		a.mu.Unlock()
		return
	}
	if fetchErr != nil {
		ex.cmd.finished = true
		a.statusUpdateLocked(fw, ex, agentStatus(t.TaskID.Value, mesos.TASK_FAILED,
			mesos.REASON_CONTAINER_LAUNCH_FAILED, "Failed to launch container: "+fetchErr.Error()))
		a.mu.Unlock()
		return
	}
	a.statusUpdateLocked(fw, ex, a.commandStatus(ex, mesos.TASK_STARTING, ""))
	if ex.cmd.killing {
		ex.cmd.finished = true
		a.statusUpdateLocked(fw, ex, a.commandStatus(ex, mesos.TASK_KILLED, "Command was killed before it started"))
		a.mu.Unlock()
		return
	}
	path, argv, err := commandArgv(t.Command)
	var proc *procEntry
	if err == nil {
		var p Process
		p, err = a.launcher.Launch(ProcessSpec{
			Path: path, Argv: argv, Env: env, Dir: ex.directory,
			Stdout:      filepath.Join(ex.directory, "stdout"),
			Stderr:      filepath.Join(ex.directory, "stderr"),
			ContainerID: ex.containerID, Limits: limitsOf(t.Resources, ex.info.Resources),
		})
		if err == nil {
			proc = trackProcess(p)
		}
	}
	if err != nil {
		ex.cmd.finished = true
		a.statusUpdateLocked(fw, ex, a.commandStatus(ex, mesos.TASK_FAILED, "Failed to launch command: "+err.Error()))
		a.mu.Unlock()
		return
	}
	ex.proc = proc
	ex.cmd.started = true
	a.statusUpdateLocked(fw, ex, a.commandStatus(ex, mesos.TASK_RUNNING, ""))
	a.watchLocked(ex)
	a.mu.Unlock()
}

// commandExitedLocked reports the end of the command with its terminal state.
func (a *Agent) commandExitedLocked(ex *agentExecutor) {
	if ex.cmd == nil {
		ex.cmd = &commandRun{}
	}
	if ex.cmd.killTimer != nil {
		ex.cmd.killTimer.Stop()
	}
	t := ex.tasks[ex.id()]
	if t == nil || isTerminalState(t.state) || ex.fw.terminating {
		ex.cmd.finished = true
		a.executorExitedLocked(ex, ex.proc.status, ex.proc.known)
		return
	}
	ws := ex.proc.status
	state, msg := mesos.TASK_FAILED, "Command terminated"
	switch {
	case !ex.proc.known:
		msg = "Command terminated (exit status unknown after agent restart)"
		if ex.cmd.killing {
			state = mesos.TASK_KILLED
		}
	case ws.Exited():
		msg = "Command exited with status " + strconv.Itoa(ws.ExitStatus())
		if ws.ExitStatus() == 0 {
			state = mesos.TASK_FINISHED
		}
		if ex.cmd.killing {
			state = mesos.TASK_KILLED
		}
	case ws.Signaled():
		msg = "Command terminated with signal " + signalName(ws.Signal())
		if ex.cmd.killing {
			state = mesos.TASK_KILLED
		}
	}
	ex.cmd.finished = true
	st := a.commandStatus(ex, state, msg)
	if ex.exitReason == mesos.REASON_CONTAINER_LIMITATION_MEMORY {
		st.State, st.Source = mesos.TASK_FAILED.Enum(), mesos.SOURCE_AGENT.Enum()
		st.Reason, st.Message = ex.exitReason.Enum(), aptr(ex.exitMessage)
	}
	a.statusUpdateLocked(ex.fw, ex, st)
	// The executor is done; it is forgotten when the update is acknowledged.
	ex.state = execTerminated
	ex.stopTimers()
	a.unlinkVolumes(ex)
	a.maybeRemoveExecutorLocked(ex)
	if ex.fw.checkpoint() {
		a.saveCheckpointLocked()
	}
}

// signalName spells a signal like strsignal(3): "Terminated", "Killed".
func signalName(s syscall.Signal) string {
	n := s.String()
	if n == "" {
		return n
	}
	return strings.ToUpper(n[:1]) + n[1:]
}

// killCommandLocked kills a command task: SIGTERM to its process group,
// SIGKILL after the grace period.
func (a *Agent) killCommandLocked(ex *agentExecutor, policy *mesos.KillPolicy) {
	if ex.cmd == nil || ex.cmd.finished || ex.state == execTerminated {
		return
	}
	first := !ex.cmd.killing
	ex.cmd.killing = true
	if !ex.cmd.started || ex.proc == nil {
		ex.cancelFetch()
		return // runCommand reports TASK_KILLED
	}
	if !first {
		return
	}
	t := ex.tasks[ex.id()]
	grace := defaultKillGrace
	if t != nil && t.info.KillPolicy != nil && t.info.KillPolicy.GracePeriod != nil {
		grace = time.Duration(t.info.KillPolicy.GracePeriod.Nanoseconds)
	}
	if policy != nil && policy.GracePeriod != nil {
		grace = time.Duration(policy.GracePeriod.Nanoseconds)
	}
	if ex.fw.hasCapability(mesos.FrameworkInfo_Capability_TASK_KILLING_STATE) && !ex.fw.terminating {
		a.statusUpdateLocked(ex.fw, ex, a.commandStatus(ex, mesos.TASK_KILLING, ""))
	}
	_ = ex.proc.signal(syscall.SIGTERM)
	p := ex.proc
	ex.cmd.killTimer = time.AfterFunc(grace, func() { _ = p.signal(syscall.SIGKILL) })
}
