package devcluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Checkpointing. Mesos keeps a tree of small files under <work_dir>/meta,
// each rewritten only when its object changes. The dev agent keeps the same
// information in one append-only log, <work>/meta/agent.log: one line of
// JSON per save, holding only the records that changed since the previous
// save (and deletions), written and fsynced before saveCheckpointLocked
// returns, so the cost of a change does not grow with the number of tasks.
// The first save of an agent, and a save once the log has grown to several
// times its last snapshot, write a snapshot of the whole state to a new file
// that replaces the log atomically (write + fsync + rename): the log is
// compacted in amortised O(1) per change.
//
// What is checkpointed: the agent id, the checkpointed resources (always),
// and for frameworks with checkpoint=true their FrameworkInfo, executors
// (info, container id, sandbox, pid and process start time), tasks (info,
// latest state, whether delivered) and unacknowledged status updates.
// Frameworks without checkpointing are never written, so their executors do
// not survive a restart (Close(false) kills them), as in Mesos. Recovery
// replays the log; a torn last line (a crash during a write) is ignored, so
// every save is atomic.
//
// Change tracking: the small records (agent id, resources, framework infos)
// are compared with what was last written; executor records are compared by
// a fingerprint on every save (O(executors)); task and stream records are
// written when marked dirty (ckTaskLocked, ckStreamLocked, ckRescanLocked)
// by the code that changes them, and with their executor when it is new.

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

// Log records.

type ckMeta struct {
	AgentID               string                `json:"agent_id,omitempty"`
	CheckpointedResources ckResources           `json:"checkpointed_resources"`
	Frameworks            []mesos.FrameworkInfo `json:"frameworks"`
}

// ckResources are resources in the checkpoint log, each written as its
// protobuf encoding (a base64 string): mesos-go's JSON encoding of a
// reserved resource with labels costs tens of microseconds, and the agent
// record holds every reservation and volume of the agent. Reading also
// takes the JSON objects older logs hold.
type ckResources []mesos.Resource

func (rs ckResources) MarshalJSON() ([]byte, error) {
	if rs == nil {
		return []byte("null"), nil
	}
	enc := make([][]byte, len(rs))
	for i := range rs {
		b, err := rs[i].Marshal()
		if err != nil {
			return nil, err
		}
		enc[i] = b
	}
	return json.Marshal(enc)
}

func (rs *ckResources) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		*rs = nil
		return nil
	}
	out := make(ckResources, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			var b []byte
			if err := json.Unmarshal(r, &b); err != nil {
				return err
			}
			if err := out[i].Unmarshal(b); err != nil {
				return err
			}
		} else if err := json.Unmarshal(r, &out[i]); err != nil {
			return err
		}
	}
	*rs = out
	return nil
}

type ckRef struct {
	Framework string `json:"framework"`
	Executor  string `json:"executor,omitempty"`
	Task      string `json:"task,omitempty"`
}

type ckExecRec struct {
	Framework string     `json:"framework"`
	Executor  ckExecutor `json:"executor"` // Tasks unset
}

type ckTaskRec struct {
	Framework string `json:"framework"`
	Executor  string `json:"executor"`
	Task      ckTask `json:"task"`
}

type ckOp struct {
	Meta      *ckMeta    `json:"meta,omitempty"`
	Resources *ckResDiff `json:"resources,omitempty"`
	Exec      *ckExecRec `json:"exec,omitempty"`
	DelExec   *ckRef     `json:"del_exec,omitempty"`
	Task      *ckTaskRec `json:"task,omitempty"`
	DelTask   *ckRef     `json:"del_task,omitempty"`
	Stream    *ckStream  `json:"stream,omitempty"`
	DelStream *ckRef     `json:"del_stream,omitempty"`
}

// ckResDiff changes the checkpointed resources of the last agent record:
// one resource equal to each of Del (by protobuf encoding) goes, Add come.
// A RESERVE or CREATE then costs the log what it changed, not every
// reservation and volume of the agent.
type ckResDiff struct {
	Del ckResources `json:"del,omitempty"`
	Add ckResources `json:"add,omitempty"`
}

// resourceMultiset counts resources by their protobuf encoding.
func resourceMultiset(rs []mesos.Resource) map[string]int {
	m := make(map[string]int, len(rs))
	for i := range rs {
		b, _ := rs[i].Marshal()
		m[string(b)]++
	}
	return m
}

// diffResources is what turns the multiset from into the resources to.
func diffResources(from map[string]int, to []mesos.Resource) (d ckResDiff, toSet map[string]int) {
	toSet = resourceMultiset(to)
	for enc, n := range from {
		for range n - toSet[enc] {
			var r mesos.Resource
			_ = r.Unmarshal([]byte(enc))
			d.Del = append(d.Del, r)
		}
	}
	seen := map[string]int{}
	for i := range to {
		b, _ := to[i].Marshal()
		if seen[string(b)]++; seen[string(b)] > from[string(b)] {
			d.Add = append(d.Add, to[i])
		}
	}
	return d, toSet
}

// apply replays a diff onto rs.
func (d ckResDiff) apply(rs ckResources) ckResources {
	out := append(ckResources(nil), rs...)
	for _, del := range d.Del {
		want, _ := del.Marshal()
		for i := range out {
			if b, _ := out[i].Marshal(); string(b) == string(want) {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
	}
	out = append(out, d.Add...)
	if len(out) == 0 {
		return nil // as the agent holds no resources after a checkpoint of none
	}
	return out
}

type ckBatch struct {
	Snapshot bool   `json:"snapshot,omitempty"`
	Ops      []ckOp `json:"ops"`
}

type ckExecKey struct{ framework, executor string }

type ckTaskKey struct{ framework, executor, task string }

// ckExecFP is what an executor record depends on; a change of it rewrites
// the record.
type ckExecFP struct {
	ex        *agentExecutor
	state     execState
	proc      *procEntry
	killing   bool
	queued    int
	queuedPtr *launchUnit
	links     int
}

func execFingerprint(ex *agentExecutor) ckExecFP {
	fp := ckExecFP{ex: ex, state: ex.state, proc: ex.proc, queued: len(ex.queued), links: len(ex.links)}
	if len(ex.queued) > 0 {
		fp.queuedPtr = &ex.queued[0]
	}
	if ex.cmd != nil {
		fp.killing = ex.cmd.killing
	}
	return fp
}

// ckState is the agent's checkpoint log and what it last wrote.
type ckState struct {
	f        *os.File
	size     int64
	snapSize int64
	broken   bool // a write failed: the next save writes a snapshot
	meta     ckMetaKey
	// metaRes keeps the checkpointed resources last written alive, so that
	// a new slice can never reuse their address (meta compares by it).
	metaRes []mesos.Resource
	// metaSet are the checkpointed resources the log holds, by encoding.
	metaSet map[string]int
	execs   map[ckExecKey]ckExecFP
	tasks   map[ckTaskKey]struct{}
	streams map[streamKey]struct{}
	rescan  map[ckExecKey]struct{}
}

const ckCompactMin = 1 << 20

func (a *Agent) checkpointPath() string {
	return filepath.Join(a.cfg.WorkDir, "meta", "agent.log")
}

func (a *Agent) ckLocked() *ckState {
	if a.ck == nil {
		a.ck = &ckState{broken: true, tasks: map[ckTaskKey]struct{}{}, streams: map[streamKey]struct{}{},
			rescan: map[ckExecKey]struct{}{}, execs: map[ckExecKey]ckExecFP{}}
	}
	return a.ck
}

// ckTaskLocked marks a task's record dirty (changed, added or removed).
func (a *Agent) ckTaskLocked(ex *agentExecutor, taskID string) {
	if ex.fw.checkpoint() {
		a.ckLocked().tasks[ckTaskKey{ex.fw.id(), ex.id(), taskID}] = struct{}{}
	}
}

// ckStreamLocked marks a status update stream's record dirty.
func (a *Agent) ckStreamLocked(fw *agentFramework, k streamKey) {
	if fw == nil || fw.checkpoint() {
		a.ckLocked().streams[k] = struct{}{}
	}
}

// ckRescanLocked has the next save rewrite every task of an executor.
func (a *Agent) ckRescanLocked(ex *agentExecutor) {
	if ex.fw.checkpoint() {
		a.ckLocked().rescan[ckExecKey{ex.fw.id(), ex.id()}] = struct{}{}
	}
}

func (a *Agent) ckMetaLocked() ckMeta {
	m := ckMeta{AgentID: a.info.GetID().GetValue(), CheckpointedResources: a.checkpointed}
	ids := make([]string, 0, len(a.frameworks))
	for id, fw := range a.frameworks {
		if fw.checkpoint() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		m.Frameworks = append(m.Frameworks, a.frameworks[id].info)
	}
	return m
}

// ckMetaKey identifies the agent record's content without encoding it, so
// a save need not marshal every reservation and volume to learn that none
// changed (that made saves O(resources) each, and a busy agent's launches
// quadratic: docs/benchmarks.md). The checkpointed resources are compared
// by identity: they are only ever replaced by a new slice, never changed in
// place.
type ckMetaKey struct {
	agentID    string
	resources  *mesos.Resource
	nResources int
	frameworks string // each checkpointing framework's id and encoded info
}

func (a *Agent) ckMetaKeyLocked() ckMetaKey {
	k := ckMetaKey{agentID: a.info.GetID().GetValue(), resources: unsafe.SliceData(a.checkpointed), nResources: len(a.checkpointed)}
	ids := make([]string, 0, len(a.frameworks))
	for id, fw := range a.frameworks {
		if fw.checkpoint() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var b strings.Builder
	for _, id := range ids {
		info, _ := a.frameworks[id].info.Marshal()
		fmt.Fprintf(&b, "%s:%x;", id, info)
	}
	k.frameworks = b.String()
	return k
}

func ckExecRecord(ex *agentExecutor) ckExecutor {
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
	return ce
}

func ckTaskRecord(t *agentTask) ckTask {
	return ckTask{Info: t.info, State: t.state, Launched: t.launched, Statuses: t.statuses}
}

func ckStreamRecord(s *updateStream) *ckStream {
	cs := &ckStream{FrameworkID: s.key.framework, TaskID: s.key.task, Pending: s.pending, Terminal: s.terminal}
	for u := range s.seen {
		cs.Seen = append(cs.Seen, []byte(u))
	}
	sort.Slice(cs.Seen, func(i, j int) bool { return bytes.Compare(cs.Seen[i], cs.Seen[j]) < 0 })
	return cs
}

// liveExecsLocked lists the executors of checkpointing frameworks.
func (a *Agent) liveExecsLocked() map[ckExecKey]*agentExecutor {
	out := map[ckExecKey]*agentExecutor{}
	for fwID, fw := range a.frameworks {
		if !fw.checkpoint() {
			continue
		}
		for exID, ex := range fw.executors {
			out[ckExecKey{fwID, exID}] = ex
		}
	}
	return out
}

// saveCheckpointLocked checkpoints what changed since the last save;
// failures are logged (the dev agent keeps running, as a real one with a
// broken disk would not).
func (a *Agent) saveCheckpointLocked() {
	if a.closed {
		return
	}
	ck := a.ckLocked()
	if ck.broken || ck.f == nil {
		a.writeSnapshotLocked()
		return
	}
	var ops []ckOp
	if key := a.ckMetaKeyLocked(); key != ck.meta {
		if key.agentID == ck.meta.agentID && key.frameworks == ck.meta.frameworks && ck.metaSet != nil {
			var d ckResDiff
			d, ck.metaSet = diffResources(ck.metaSet, a.checkpointed)
			ops = append(ops, ckOp{Resources: &d})
		} else {
			meta := a.ckMetaLocked()
			ops = append(ops, ckOp{Meta: &meta})
			ck.metaSet = resourceMultiset(a.checkpointed)
		}
		ck.meta, ck.metaRes = key, a.checkpointed
	}
	live := a.liveExecsLocked()
	written := map[ckTaskKey]bool{}
	for k := range ck.execs {
		if live[k] == nil {
			ops = append(ops, ckOp{DelExec: &ckRef{Framework: k.framework, Executor: k.executor}})
			delete(ck.execs, k)
		}
	}
	keys := sortedExecKeys(live)
	for _, k := range keys {
		ex := live[k]
		fp := execFingerprint(ex)
		old, had := ck.execs[k]
		if had && old == fp {
			if _, ok := ck.rescan[k]; !ok {
				continue
			}
		}
		full := !had || old.ex != ex
		if had && old.ex != ex {
			ops = append(ops, ckOp{DelExec: &ckRef{Framework: k.framework, Executor: k.executor}})
		}
		if !had || old != fp {
			ops = append(ops, ckOp{Exec: &ckExecRec{Framework: k.framework, Executor: ckExecRecord(ex)}})
			ck.execs[k] = fp
		}
		if _, ok := ck.rescan[k]; ok {
			full = true
		}
		if full {
			for _, id := range sortedTaskIDs(ex) {
				ops = append(ops, ckOp{Task: &ckTaskRec{Framework: k.framework, Executor: k.executor, Task: ckTaskRecord(ex.tasks[id])}})
				written[ckTaskKey{k.framework, k.executor, id}] = true
			}
		}
	}
	clear(ck.rescan)
	for k := range ck.tasks {
		if written[k] {
			continue
		}
		ex := live[ckExecKey{k.framework, k.executor}]
		if ex == nil {
			continue // the executor's deletion (or absence) covers its tasks
		}
		if t := ex.tasks[k.task]; t != nil {
			ops = append(ops, ckOp{Task: &ckTaskRec{Framework: k.framework, Executor: k.executor, Task: ckTaskRecord(t)}})
		} else {
			ops = append(ops, ckOp{DelTask: &ckRef{Framework: k.framework, Executor: k.executor, Task: k.task}})
		}
	}
	clear(ck.tasks)
	for k := range ck.streams {
		s := a.streams[k]
		if fw := a.frameworks[k.framework]; s != nil && fw != nil && fw.checkpoint() {
			ops = append(ops, ckOp{Stream: ckStreamRecord(s)})
		} else {
			ops = append(ops, ckOp{DelStream: &ckRef{Framework: k.framework, Task: k.task}})
		}
	}
	clear(ck.streams)
	if len(ops) == 0 {
		return
	}
	line, err := json.Marshal(ckBatch{Ops: ops})
	if err == nil {
		line = append(line, '\n')
		var n int
		n, err = ck.f.Write(line)
		ck.size += int64(n)
		if err == nil {
			err = ck.f.Sync()
		}
	}
	if err != nil {
		a.log.Error("checkpoint failed", "err", err)
		ck.broken = true
		return
	}
	if ck.size > 4*ck.snapSize+ckCompactMin {
		a.writeSnapshotLocked()
	}
}

// writeSnapshotLocked replaces the log with one snapshot of the whole state.
func (a *Agent) writeSnapshotLocked() {
	ck := a.ckLocked()
	meta, key := a.ckMetaLocked(), a.ckMetaKeyLocked()
	ops := []ckOp{{Meta: &meta}}
	execs := map[ckExecKey]ckExecFP{}
	live := a.liveExecsLocked()
	keys := sortedExecKeys(live)
	for _, k := range keys {
		ex := live[k]
		ops = append(ops, ckOp{Exec: &ckExecRec{Framework: k.framework, Executor: ckExecRecord(ex)}})
		execs[k] = execFingerprint(ex)
		for _, id := range sortedTaskIDs(ex) {
			ops = append(ops, ckOp{Task: &ckTaskRec{Framework: k.framework, Executor: k.executor, Task: ckTaskRecord(ex.tasks[id])}})
		}
	}
	for k, s := range a.streams {
		if fw := a.frameworks[k.framework]; fw == nil || !fw.checkpoint() {
			continue
		}
		ops = append(ops, ckOp{Stream: ckStreamRecord(s)})
	}
	line, err := json.Marshal(ckBatch{Snapshot: true, Ops: ops})
	if err != nil {
		a.log.Error("checkpoint failed", "err", err)
		return
	}
	line = append(line, '\n')
	path := a.checkpointPath()
	if err := writeFileAtomic(path, line); err != nil {
		a.log.Error("checkpoint failed", "err", err)
		ck.broken = true
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.log.Error("checkpoint failed", "err", err)
		ck.broken = true
		return
	}
	if ck.f != nil {
		ck.f.Close()
	}
	ck.f = f
	ck.size = int64(len(line))
	ck.snapSize = ck.size
	ck.broken = false
	ck.meta, ck.metaRes, ck.metaSet = key, a.checkpointed, resourceMultiset(a.checkpointed)
	ck.execs = execs
	clear(ck.tasks)
	clear(ck.streams)
	clear(ck.rescan)
}

// closeCheckpointLocked closes the log (Agent.Close).
func (a *Agent) closeCheckpointLocked() {
	if a.ck != nil && a.ck.f != nil {
		a.ck.f.Close()
		a.ck.f = nil
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
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename durable.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readCheckpoint replays the log into the document recovery works from.
// Replay stops at the first line that is torn or does not parse.
func readCheckpoint(data []byte) (*ckAgent, error) {
	var meta ckMeta
	execs := map[ckExecKey]*ckExecutor{}
	tasks := map[ckExecKey]map[string]ckTask{}
	streams := map[streamKey]*ckStream{}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn last write
		}
		var b ckBatch
		if err := json.Unmarshal(data[:i], &b); err != nil {
			break
		}
		data = data[i+1:]
		if b.Snapshot {
			meta = ckMeta{}
			clear(execs)
			clear(tasks)
			clear(streams)
		}
		for _, op := range b.Ops {
			switch {
			case op.Meta != nil:
				meta = *op.Meta
			case op.Resources != nil:
				meta.CheckpointedResources = op.Resources.apply(meta.CheckpointedResources)
			case op.Exec != nil:
				e := op.Exec.Executor
				execs[ckExecKey{op.Exec.Framework, e.Info.ExecutorID.Value}] = &e
			case op.DelExec != nil:
				k := ckExecKey{op.DelExec.Framework, op.DelExec.Executor}
				delete(execs, k)
				delete(tasks, k)
			case op.Task != nil:
				k := ckExecKey{op.Task.Framework, op.Task.Executor}
				if tasks[k] == nil {
					tasks[k] = map[string]ckTask{}
				}
				tasks[k][op.Task.Task.Info.TaskID.Value] = op.Task.Task
			case op.DelTask != nil:
				delete(tasks[ckExecKey{op.DelTask.Framework, op.DelTask.Executor}], op.DelTask.Task)
			case op.Stream != nil:
				streams[streamKey{op.Stream.FrameworkID, op.Stream.TaskID}] = op.Stream
			case op.DelStream != nil:
				delete(streams, streamKey{op.DelStream.Framework, op.DelStream.Task})
			}
		}
	}
	ck := &ckAgent{AgentID: meta.AgentID, CheckpointedResources: meta.CheckpointedResources}
	fws := map[string]bool{}
	for _, info := range meta.Frameworks {
		fwID := info.GetID().GetValue()
		fws[fwID] = true
		cf := ckFramework{Info: info}
		var eids []string
		for k := range execs {
			if k.framework == fwID {
				eids = append(eids, k.executor)
			}
		}
		sort.Strings(eids)
		for _, eid := range eids {
			k := ckExecKey{fwID, eid}
			ce := *execs[k]
			tids := slices.Sorted(maps.Keys(tasks[k]))
			for _, tid := range tids {
				ce.Tasks = append(ce.Tasks, tasks[k][tid])
			}
			cf.Executors = append(cf.Executors, ce)
		}
		ck.Frameworks = append(ck.Frameworks, cf)
	}
	sk := make([]streamKey, 0, len(streams))
	for k := range streams {
		if fws[k.framework] {
			sk = append(sk, k)
		}
	}
	sort.Slice(sk, func(i, j int) bool {
		if sk[i].framework != sk[j].framework {
			return sk[i].framework < sk[j].framework
		}
		return sk[i].task < sk[j].task
	})
	for _, k := range sk {
		ck.Streams = append(ck.Streams, *streams[k])
	}
	return ck, nil
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
	ck, err := readCheckpoint(data)
	if err != nil {
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

// sortedExecKeys orders executors by framework, then executor, so that
// checkpoint records come out in a stable order.
func sortedExecKeys[V any](m map[ckExecKey]V) []ckExecKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b ckExecKey) int {
		if c := strings.Compare(a.framework, b.framework); c != 0 {
			return c
		}
		return strings.Compare(a.executor, b.executor)
	})
}
