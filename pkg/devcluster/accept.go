package devcluster

import (
	"fmt"
	"path"
	"strings"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// accept applies an ACCEPT: the offers are validated together, then the
// operations are applied one after the other against the offered resources,
// each seeing the result of the previous one. Caller holds m.mu.
func (m *Master) accept(fw *mframework, acc *scheduler.Call_Accept) {
	if len(acc.OfferIDs) == 0 && len(acc.Operations) == 0 {
		return
	}
	var offers []*moffer
	var invalid string
	seen := map[string]bool{}
	if len(acc.OfferIDs) == 0 {
		invalid = "No offers specified"
	}
	for _, oid := range acc.OfferIDs {
		o := m.offers[oid.Value]
		switch {
		case seen[oid.Value]:
			if invalid == "" {
				invalid = fmt.Sprintf("Duplicate offer %s in offer list", oid.Value)
			}
			continue
		case o == nil:
			if invalid == "" {
				invalid = fmt.Sprintf("Offer %s is no longer valid", oid.Value)
			}
		case o.fw != fw:
			if invalid == "" {
				invalid = fmt.Sprintf("Offer %s has invalid framework", oid.Value)
			}
			o = nil
		case len(offers) > 0 && o.agentID != offers[0].agentID:
			if invalid == "" {
				invalid = fmt.Sprintf("Aggregated offers must belong to one single agent. Offer %s uses agent %s and offer %s uses agent %s",
					offers[0].id, offers[0].agentID, o.id, o.agentID)
			}
		case len(offers) > 0 && o.role != offers[0].role:
			if invalid == "" {
				invalid = fmt.Sprintf("Aggregated offers must be allocated to the same role. Offer %s uses role %s and offer %s uses role %s",
					offers[0].id, offers[0].role, o.id, o.role)
			}
		}
		seen[oid.Value] = true
		if o != nil {
			offers = append(offers, o)
		}
	}
	if invalid != "" {
		// Every offer of the call is discarded; tasks are dropped.
		for _, o := range offers {
			m.removeOffer(o, true)
		}
		state := mesos.TASK_LOST
		if fw.partitionAware() {
			state = mesos.TASK_DROPPED
		}
		for _, op := range acc.Operations {
			for _, ti := range operationTasks(op) {
				fw.send(updateEvent(masterStatus(ti.TaskID.Value, state, mesos.REASON_INVALID_OFFERS,
					"Task launched with invalid offers: "+invalid, ti.AgentID.Value)))
			}
		}
		return
	}

	a := m.agents[offers[0].agentID]
	role := offers[0].role
	var available mesos.Resources
	for _, o := range offers {
		available = resPlus(available, o.resources)
		m.removeOffer(o, false)
	}
	if a == nil {
		return
	}
	// The agent learns the checkpointed resources the operations leave
	// before any task that follows them, and once per run of RESERVE,
	// CREATE, UNRESERVE and DESTROY rather than after each (Mesos sends a
	// message per operation; the agent's state when a task arrives is the
	// same, and an ACCEPT that sets up thirty instances costs one checkpoint
	// instead of sixty, each of every reservation on the agent).
	pending := false
	flush := func() {
		if pending {
			a.link.sendToAgent(msgCheckpointResources{Resources: a.checkpointed()})
			pending = false
		}
	}
	for _, op := range acc.Operations {
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH, mesos.Offer_Operation_LAUNCH_GROUP:
			flush()
		}
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH:
			if op.Launch == nil {
				continue
			}
			for i := range op.Launch.TaskInfos {
				available = m.launch(fw, a, role, available, []mesos.TaskInfo{op.Launch.TaskInfos[i]}, nil, op.ID != nil)
			}
		case mesos.Offer_Operation_LAUNCH_GROUP:
			if op.LaunchGroup == nil {
				continue
			}
			exec := op.LaunchGroup.Executor
			available = m.launch(fw, a, role, available, op.LaunchGroup.TaskGroup.Tasks, &exec, op.ID != nil)
		case mesos.Offer_Operation_RESERVE, mesos.Offer_Operation_UNRESERVE,
			mesos.Offer_Operation_CREATE, mesos.Offer_Operation_DESTROY:
			next, err := m.applyResourceOp(fw, a, role, available, op)
			if err != "" {
				m.log.Warn("dropping operation", "framework", fw.id, "type", op.Type.String(), "error", err)
				continue
			}
			available = next
			pending = true
		default:
			m.log.Warn("dropping unsupported operation", "framework", fw.id, "type", op.Type.String())
		}
	}
	flush()
	// What is left is declined with the call's filters.
	m.addFilter(fw, a.id, role, available, acc.Filters)
}

func operationTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch {
	case op.Type == mesos.Offer_Operation_LAUNCH && op.Launch != nil:
		return op.Launch.TaskInfos
	case op.Type == mesos.Offer_Operation_LAUNCH_GROUP && op.LaunchGroup != nil:
		return op.LaunchGroup.TaskGroup.Tasks
	}
	return nil
}

// validID checks an id the way Mesos' common validation does.
func validID(kind, id string) string {
	if id == "" {
		return fmt.Sprintf("'%s' must not be empty", kind)
	}
	if id == "." || id == ".." {
		return fmt.Sprintf("'%s' '%s' is disallowed", kind, id)
	}
	for _, c := range id {
		if c == '/' || c == '\\' || c < 0x20 || c == 0x7f {
			return fmt.Sprintf("'%s' '%s' contains invalid characters", kind, id)
		}
	}
	return ""
}

// inputResources canonicalizes resources a framework sent for an offer
// allocated to role: resources allocated elsewhere are an error.
func inputResources(rs []mesos.Resource, role string) (mesos.Resources, string) {
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			return nil, "Invalid resources: " + err.Error()
		}
		if r.AllocationInfo != nil && r.AllocationInfo.GetRole() != role {
			return nil, fmt.Sprintf("Resource %s is allocated to role '%s' but the offer is allocated to '%s'",
				r.Name, r.AllocationInfo.GetRole(), role)
		}
	}
	return canonical(rs), ""
}

// launch validates and launches one task (LAUNCH) or a task group
// (LAUNCH_GROUP, exec set), returning what is left of available.
func (m *Master) launch(fw *mframework, a *magent, role string, available mesos.Resources,
	tasks []mesos.TaskInfo, groupExec *mesos.ExecutorInfo, hasOpID bool) mesos.Resources {
	group := groupExec != nil
	fail := func(msg string) mesos.Resources {
		reason := mesos.REASON_TASK_INVALID
		if group {
			reason = mesos.REASON_TASK_GROUP_INVALID
		}
		for _, ti := range tasks {
			fw.send(updateEvent(masterStatus(ti.TaskID.Value, mesos.TASK_ERROR, reason, msg, a.id)))
		}
		return available
	}
	if hasOpID {
		return fail("The 'id' field was set in the offer operation. Operation feedback is not supported for LAUNCH or LAUNCH_GROUP operations")
	}
	var exec *mesos.ExecutorInfo
	if group {
		e := *proto.Clone(groupExec).(*mesos.ExecutorInfo)
		if e.Type == mesos.ExecutorInfo_UNKNOWN {
			return fail("'ExecutorInfo.type' must be set")
		}
		if e.FrameworkID == nil {
			return fail("'ExecutorInfo.framework_id' must be set")
		}
		if len(tasks) == 0 {
			return fail("Task group is empty")
		}
		exec = &e
	}
	var needed mesos.Resources
	taskRes := make([]mesos.Resources, len(tasks))
	seenIDs := map[string]bool{}
	for i := range tasks {
		ti := &tasks[i]
		if msg := validID("TaskID", ti.TaskID.Value); msg != "" {
			return fail(msg)
		}
		if seenIDs[ti.TaskID.Value] || fw.tasks[ti.TaskID.Value] != nil {
			return fail("Task has duplicate ID: " + ti.TaskID.Value)
		}
		seenIDs[ti.TaskID.Value] = true
		if ti.AgentID.Value != a.id {
			return fail(fmt.Sprintf("Task uses invalid agent: %s", ti.AgentID.Value))
		}
		if group {
			if ti.Executor != nil {
				return fail(fmt.Sprintf("'TaskInfo.executor' must not be set for task '%s' in a task group", ti.TaskID.Value))
			}
			if ti.Command == nil {
				return fail(fmt.Sprintf("'TaskInfo.command' must be set for task '%s' in a task group", ti.TaskID.Value))
			}
		} else {
			if (ti.Executor == nil) == (ti.Command == nil) {
				return fail("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present")
			}
			if ti.Executor != nil {
				e := *proto.Clone(ti.Executor).(*mesos.ExecutorInfo)
				exec = &e
			}
		}
		rs, msg := inputResources(ti.Resources, role)
		if msg != "" {
			return fail("Task uses invalid resources: " + msg)
		}
		if len(rs) == 0 {
			return fail("Task uses no resources")
		}
		if msg := validateVolumes(rs); msg != "" {
			return fail(msg)
		}
		taskRes[i] = rs
		needed = resPlus(needed, rs)
	}
	newExec := false
	var execRes mesos.Resources
	if exec != nil {
		if msg := validID("ExecutorID", exec.ExecutorID.Value); msg != "" {
			return fail(msg)
		}
		if exec.FrameworkID == nil {
			exec.FrameworkID = &mesos.FrameworkID{Value: fw.id}
		} else if exec.FrameworkID.Value != fw.id {
			return fail(fmt.Sprintf("ExecutorInfo has an invalid FrameworkID (Actual: %s vs Expected: %s)", exec.FrameworkID.Value, fw.id))
		}
		if !group && exec.Command == nil && exec.Type != mesos.ExecutorInfo_DEFAULT {
			return fail("Executor '" + exec.ExecutorID.Value + "' should have 'ExecutorInfo.command' set")
		}
		rs, msg := inputResources(exec.Resources, role)
		if msg != "" {
			return fail("Executor uses invalid resources: " + msg)
		}
		execRes = rs
		if fw.executors[a.id][exec.ExecutorID.Value] == nil {
			newExec = true
			needed = resPlus(needed, execRes)
		}
	}
	if !containsAll(available, needed) {
		what := "task and its executor"
		if group {
			what = "task group and its executor"
		}
		return fail(fmt.Sprintf("Total resources %s required by %s is more than available %s",
			formatResources(allocatedTo(needed, role)), what, formatResources(allocatedTo(available, role))))
	}
	available = resMinus(available, needed)

	// Record and send.
	if newExec {
		if fw.executors[a.id] == nil {
			fw.executors[a.id] = map[string]*mexecutor{}
		}
		stored := *proto.Clone(exec).(*mesos.ExecutorInfo)
		stored.Resources = execRes
		fw.executors[a.id][exec.ExecutorID.Value] = &mexecutor{info: stored, resources: execRes}
		m.allocAdd(a.id, execRes)
	}
	var sent []mesos.TaskInfo
	for i := range tasks {
		ti := *proto.Clone(&tasks[i]).(*mesos.TaskInfo)
		ti.Resources = allocatedTo(taskRes[i], role)
		staging := mesos.TASK_STAGING
		t := &mtask{agentID: a.id, role: role, resources: taskRes[i], t: mesos.Task{
			Name:        ti.Name,
			TaskID:      ti.TaskID,
			FrameworkID: mesos.FrameworkID{Value: fw.id},
			AgentID:     mesos.AgentID{Value: a.id},
			State:       &staging,
			Resources:   ti.Resources,
			Labels:      ti.Labels,
			Discovery:   ti.Discovery,
			Container:   ti.Container,
			HealthCheck: ti.HealthCheck,
			KillPolicy:  ti.KillPolicy,
		}}
		if ti.Command != nil && ti.Command.User != nil {
			t.t.User = proto.String(*ti.Command.User)
		}
		if exec != nil {
			eid := exec.ExecutorID
			t.t.ExecutorID = &eid
			ti.Executor = nil
		}
		fw.tasks[ti.TaskID.Value] = t
		m.allocAdd(a.id, t.resources)
		sent = append(sent, ti)
	}
	var execMsg *mesos.ExecutorInfo
	if exec != nil {
		e := *proto.Clone(exec).(*mesos.ExecutorInfo)
		e.Resources = allocatedTo(execRes, role)
		execMsg = &e
	}
	if group {
		a.link.sendToAgent(msgRunTasks{Framework: fw.info, Executor: execMsg, Tasks: sent, Group: true})
	} else {
		if execMsg != nil {
			sent[0].Executor = execMsg
		}
		a.link.sendToAgent(msgRunTasks{Framework: fw.info, Executor: execMsg, Tasks: sent})
	}
	return available
}

// validateVolumes checks the persistent volumes a task uses.
func validateVolumes(rs mesos.Resources) string {
	for _, r := range rs {
		if p := r.GetDisk().GetPersistence(); p != nil {
			v := r.GetDisk().GetVolume()
			if v == nil {
				return fmt.Sprintf("Persistent volume %s is missing 'volume'", p.ID)
			}
		}
	}
	return ""
}

// applyResourceOp applies RESERVE, UNRESERVE, CREATE or DESTROY to the
// offered resources and the agent's total.
func (m *Master) applyResourceOp(fw *mframework, a *magent, role string, available mesos.Resources, op mesos.Offer_Operation) (mesos.Resources, string) {
	principal := fw.info.GetPrincipal()
	var take, give mesos.Resources
	switch op.Type {
	case mesos.Offer_Operation_RESERVE:
		if op.Reserve == nil {
			return nil, "missing 'reserve'"
		}
		rs, msg := inputResources(op.Reserve.Resources, role)
		if msg != "" {
			return nil, msg
		}
		if len(rs) == 0 {
			return nil, "no resources to reserve"
		}
		for _, r := range rs {
			n := len(r.Reservations)
			if n == 0 {
				return nil, "Invalid RESERVE: resource " + r.Name + " carries no reservation"
			}
			ri := r.Reservations[n-1]
			if ri.GetType() != mesos.Resource_ReservationInfo_DYNAMIC {
				return nil, "Invalid RESERVE: reservation must be DYNAMIC"
			}
			if ri.GetRole() == "*" {
				return nil, "Invalid RESERVE: role '*' cannot be reserved"
			}
			if ri.GetRole() != role {
				return nil, fmt.Sprintf("Invalid RESERVE: reservation role '%s' does not match the allocation role '%s'", ri.GetRole(), role)
			}
			if principal != "" && ri.GetPrincipal() != principal {
				return nil, fmt.Sprintf("Invalid RESERVE: principal '%s' does not match the framework's principal '%s'", ri.GetPrincipal(), principal)
			}
			if r.GetDisk().GetPersistence() != nil {
				return nil, "Invalid RESERVE: persistent volumes cannot be reserved"
			}
		}
		take, give = mapResources(rs, popReservation), rs
	case mesos.Offer_Operation_UNRESERVE:
		if op.Unreserve == nil {
			return nil, "missing 'unreserve'"
		}
		rs, msg := inputResources(op.Unreserve.Resources, role)
		if msg != "" {
			return nil, msg
		}
		for _, r := range rs {
			n := len(r.Reservations)
			if n == 0 || r.Reservations[n-1].GetType() != mesos.Resource_ReservationInfo_DYNAMIC {
				return nil, "Invalid UNRESERVE: resource " + r.Name + " is not dynamically reserved"
			}
			if r.GetDisk().GetPersistence() != nil {
				return nil, "Invalid UNRESERVE: a persistent volume cannot be unreserved; DESTROY it first"
			}
		}
		take, give = rs, mapResources(rs, popReservation)
	case mesos.Offer_Operation_CREATE:
		if op.Create == nil {
			return nil, "missing 'create'"
		}
		rs, msg := inputResources(op.Create.Volumes, role)
		if msg != "" {
			return nil, msg
		}
		ids := map[string]bool{}
		for _, r := range a.total {
			if p := r.GetDisk().GetPersistence(); p != nil {
				ids[r.ReservationRole()+"/"+p.ID] = true
			}
		}
		for _, r := range rs {
			p := r.GetDisk().GetPersistence()
			if r.Name != "disk" || p == nil {
				return nil, "Invalid CREATE: resource is not a persistent volume"
			}
			if len(r.Reservations) == 0 {
				return nil, "Invalid CREATE: persistent volumes can only be created on reserved disk"
			}
			v := r.GetDisk().GetVolume()
			if v == nil {
				return nil, "Invalid CREATE: expecting 'volume' to be set"
			}
			if v.GetMode() != mesos.RW {
				return nil, "Invalid CREATE: read-only persistent volume not supported"
			}
			if v.HostPath != nil {
				return nil, "Invalid CREATE: expecting 'host_path' to be unset"
			}
			cp := v.ContainerPath
			if cp == "" || path.IsAbs(cp) || strings.HasPrefix(path.Clean(cp), "..") {
				return nil, "Invalid CREATE: 'container_path' must be a relative path inside the sandbox"
			}
			if msg := validID("persistence id", p.ID); msg != "" {
				return nil, "Invalid CREATE: " + msg
			}
			key := r.ReservationRole() + "/" + p.ID
			if ids[key] {
				return nil, fmt.Sprintf("Invalid CREATE: persistence ID '%s' already exists", p.ID)
			}
			ids[key] = true
			if principal != "" && p.Principal != nil && p.GetPrincipal() != principal {
				return nil, fmt.Sprintf("Invalid CREATE: persistence principal '%s' does not match the framework's principal '%s'", p.GetPrincipal(), principal)
			}
		}
		take, give = mapResources(rs, stripVolume), rs
	case mesos.Offer_Operation_DESTROY:
		if op.Destroy == nil {
			return nil, "missing 'destroy'"
		}
		rs, msg := inputResources(op.Destroy.Volumes, role)
		if msg != "" {
			return nil, msg
		}
		for _, r := range rs {
			if r.GetDisk().GetPersistence() == nil {
				return nil, "Invalid DESTROY: resource is not a persistent volume"
			}
		}
		take, give = rs, mapResources(rs, stripVolume)
	}
	if !containsAll(available, take) {
		return nil, fmt.Sprintf("%s: resources %s are not available in %s", op.Type.String(),
			formatResources(take), formatResources(available))
	}
	if !containsAll(a.total, take) {
		return nil, op.Type.String() + ": resources are not on the agent"
	}
	a.total = resPlus(resMinus(a.total, take), give)
	return resPlus(resMinus(available, take), give), ""
}
