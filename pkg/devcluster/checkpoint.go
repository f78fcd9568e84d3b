package devcluster

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Checkpointing. Mesos keeps a tree of small files under
// <work_dir>/meta; the dev agent keeps the same information in one JSON
// document, <work>/meta/agent.json, rewritten atomically (write + rename)
// after every change: the agent id, the checkpointed resources (always),
// and for frameworks with checkpoint=true their FrameworkInfo, executors
// (info, container id, sandbox, pid and process start time), tasks (info,
// latest state, whether delivered) and unacknowledged status updates.
// Frameworks without checkpointing are never written, so their executors do
// not survive a restart (Close(false) kills them), as in Mesos.

type ckAgent struct {
	AgentID               string           `json:"agent_id,omitempty"`
	CheckpointedResources []mesos.Resource `json:"checkpointed_resources"`
	Frameworks            []ckFramework    `json:"frameworks"`
	Streams               []ckStream       `json:"streams"`
}

type ckFramework struct {
	Info      mesos.FrameworkInfo `json:"info"`
	Executors []ckExecutor        `json:"executors"`
}

type ckExecutor struct {
	Info        mesos.ExecutorInfo `json:"info"`
	ContainerID string             `json:"container_id"`
	Directory   string             `json:"directory"`
	CommandTask bool               `json:"command_task,omitempty"`
	State       int                `json:"state"`
	Pid         int                `json:"pid,omitempty"`
	PidStart    uint64             `json:"pid_start,omitempty"`
	Killing     bool               `json:"killing,omitempty"`
	Queued      []launchUnit       `json:"queued,omitempty"`
	Tasks       []ckTask           `json:"tasks"`
	Links       []string           `json:"links,omitempty"`
}

type ckTask struct {
	Info     mesos.TaskInfo     `json:"info"`
	State    mesos.TaskState    `json:"state"`
	Launched bool               `json:"launched,omitempty"`
	Statuses []mesos.TaskStatus `json:"statuses,omitempty"`
}

type ckStream struct {
	FrameworkID string             `json:"framework_id"`
	TaskID      string             `json:"task_id"`
	Pending     []mesos.TaskStatus `json:"pending"`
	Seen        [][]byte           `json:"seen"`
	Terminal    bool               `json:"terminal,omitempty"`
}

func (a *Agent) checkpointPath() string {
	return filepath.Join(a.cfg.WorkDir, "meta", "agent.json")
}

// saveCheckpointLocked writes the checkpoint; failures are logged (the dev
// agent keeps running, as a real one with a broken disk would not).
func (a *Agent) saveCheckpointLocked() {
	if a.closed {
		return
	}
	ck := &ckAgent{AgentID: a.info.GetID().GetValue(), CheckpointedResources: a.checkpointed}
	for _, fw := range a.frameworks {
		if !fw.checkpoint() {
			continue
		}
		cf := ckFramework{Info: fw.info}
		for _, ex := range fw.executors {
			ce := ckExecutor{
				Info: ex.info, ContainerID: ex.containerID, Directory: ex.directory,
				CommandTask: ex.commandTask, State: int(ex.state), Queued: ex.queued, Links: ex.links,
			}
			if ex.proc != nil {
				ce.Pid, ce.PidStart = ex.proc.pid, ex.proc.start
			}
			if ex.cmd != nil {
				ce.Killing = ex.cmd.killing
			}
			for _, id := range sortedTaskIDs(ex) {
				t := ex.tasks[id]
				ce.Tasks = append(ce.Tasks, ckTask{Info: t.info, State: t.state, Launched: t.launched, Statuses: t.statuses})
			}
			cf.Executors = append(cf.Executors, ce)
		}
		ck.Frameworks = append(ck.Frameworks, cf)
	}
	for k, s := range a.streams {
		if fw := a.frameworks[k.framework]; fw == nil || !fw.checkpoint() {
			continue
		}
		cs := ckStream{FrameworkID: k.framework, TaskID: k.task, Pending: s.pending, Terminal: s.terminal}
		for u := range s.seen {
			cs.Seen = append(cs.Seen, []byte(u))
		}
		ck.Streams = append(ck.Streams, cs)
	}
	data, err := json.Marshal(ck)
	if err == nil {
		err = writeFileAtomic(a.checkpointPath(), data)
	}
	if err != nil {
		a.log.Error("checkpoint failed", "err", err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recover loads the checkpoint, re-adopts executor processes and arms the
// re-registration timeout (§2.5): recovered executors must re-SUBSCRIBE
// within Timeouts.ExecutorReregistration or they are killed and their tasks
// fail with REASON_EXECUTOR_REREGISTRATION_TIMEOUT. The agent registers
// with the master (same agent id) only after that.
func (a *Agent) recover() error {
	data, err := os.ReadFile(a.checkpointPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var ck ckAgent
	if err := json.Unmarshal(data, &ck); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ck.AgentID != "" {
		a.info.ID = &mesos.AgentID{Value: ck.AgentID}
	}
	a.checkpointed = ck.CheckpointedResources
	for _, r := range a.checkpointed {
		if isVolume(r) {
			_ = os.MkdirAll(a.volumeDir(r), 0o755)
		}
	}
	waiting := 0
	for _, cf := range ck.Frameworks {
		fw := a.frameworkLocked(cf.Info)
		for _, ce := range cf.Executors {
			ex := &agentExecutor{
				fw: fw, info: ce.Info, containerID: ce.ContainerID, directory: ce.Directory,
				commandTask: ce.CommandTask, state: execState(ce.State), queued: ce.Queued,
				tasks: map[string]*agentTask{}, links: ce.Links,
			}
			for _, ct := range ce.Tasks {
				ex.tasks[ct.Info.TaskID.Value] = &agentTask{info: ct.Info, state: ct.State, launched: ct.Launched, statuses: ct.Statuses}
			}
			fw.executors[ex.id()] = ex
			if ex.state == execTerminated {
				continue
			}
			ex.proc = adoptProcess(ce.Pid, ce.PidStart)
			if ex.commandTask {
				ex.cmd = &commandRun{started: true, killing: ce.Killing}
			} else {
				ex.recovered = true
				waiting++
			}
			a.log.Info("recovered executor", "framework", fw.id(), "executor", ex.id(), "pid", ce.Pid, "alive", !ex.proc.exited())
			a.watchLocked(ex)
		}
	}
	for _, cs := range ck.Streams {
		s := &updateStream{key: streamKey{cs.FrameworkID, cs.TaskID}, pending: cs.Pending, seen: map[string]bool{}, terminal: cs.Terminal}
		for _, u := range cs.Seen {
			s.seen[string(u)] = true
		}
		if len(s.pending) > 0 || !s.terminal {
			a.streams[s.key] = s
		}
	}
	if waiting > 0 {
		a.recovering = true
		t := a.cfg.Timeouts.ExecutorReregistration
		a.recoveryTimer = time.AfterFunc(t, func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.finishRecoveryLocked()
		})
	}
	return nil
}

// finishRecoveryLocked ends the re-registration window: executors that did
// not re-subscribe are killed, then the agent registers with the master.
func (a *Agent) finishRecoveryLocked() {
	if !a.recovering || a.closed {
		return
	}
	a.recovering = false
	if a.recoveryTimer != nil {
		a.recoveryTimer.Stop()
	}
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.recovered && ex.state != execTerminated {
				a.log.Warn("executor did not re-subscribe after agent restart, killing", "executor", ex.id())
				ex.recovered = false
				a.destroyLocked(ex, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
					"Executor did not reregister within "+stoutDuration(a.cfg.Timeouts.ExecutorReregistration))
			}
		}
	}
	a.saveCheckpointLocked()
	a.sendRegisterLocked()
}

// maybeFinishRecoveryLocked ends recovery early once every recovered
// executor re-subscribed or exited.
func (a *Agent) maybeFinishRecoveryLocked() {
	if !a.recovering {
		return
	}
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.recovered && ex.state != execTerminated {
				return
			}
		}
	}
	a.finishRecoveryLocked()
}
