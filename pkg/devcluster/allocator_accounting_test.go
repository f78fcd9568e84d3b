package devcluster

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// TestAllocationAccountingConsistent drives the master's allocator through a
// random sequence of offers, launches (with executors and ports), status
// updates (running, killed, finished), declines, rescinds, executor exits,
// agent re-registrations (with a task dropped or an executor forgotten),
// unreachable agents coming back and a framework removal, and after every
// step compares the incrementally kept allocation of every agent with a
// recomputation from scratch (Master.checkAllocation).
func TestAllocationAccountingConsistent(t *testing.T) {
	to := FastTimeouts()
	to.AllocationInterval = time.Hour // rounds are driven by the test
	to.AgentPing = time.Hour
	m := NewMaster(MasterConfig{Listen: "127.0.0.1:5050", Timeouts: to}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer m.Close()
	rng := rand.New(rand.NewSource(1))

	m.mu.Lock()
	defer m.mu.Unlock()
	check := func(step string) {
		t.Helper()
		if err := m.checkAllocation(); err != nil {
			t.Fatalf("after %s: %v", step, err)
		}
		for id, a := range m.agents {
			if a.inexact {
				t.Fatalf("after %s: agent %s fell back to the slow path", step, id)
			}
		}
	}
	links := map[string]*link{}
	newAgentLink := func() *link {
		var l *link
		l = newLink(func(any) {}, func(msg any) {})
		t.Cleanup(l.close)
		return l
	}
	for i := 0; i < 5; i++ {
		l := newAgentLink()
		info := mesos.AgentInfo{Hostname: fmt.Sprintf("agent-%d", i), Port: proto.Int32(5051),
			Resources: []mesos.Resource{mtPortRange(31000, 31100), mtScalar("cpus", 8), mtScalar("mem", 16384), mtScalar("disk", 1024)}}
		m.registerAgent(l, &msgRegisterAgent{Info: info})
		links[m.agentByLink[l].id] = l
	}
	check("registration")
	fwInfo := func(name string) mesos.FrameworkInfo {
		return mesos.FrameworkInfo{User: "root", Name: name, Roles: []string{"mysos"}, Checkpoint: proto.Bool(true),
			Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
				{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE}, {Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT}}}
	}
	fws := []*mframework{m.newFramework("fw-a", fwInfo("a")), m.newFramework("fw-b", fwInfo("b"))}
	agentIDs := func() []string {
		var ids []string
		for id := range m.agents {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids
	}
	offersOf := func(fw *mframework) []*moffer {
		var out []*moffer
		for _, o := range m.offers {
			if o.fw == fw {
				out = append(out, o)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
		return out
	}
	liveTasks := func() []*mtask {
		var out []*mtask
		for _, fw := range m.frameworks {
			for _, tk := range fw.tasks {
				if taskCounted(tk) && m.agents[tk.agentID] != nil {
					out = append(out, tk)
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].t.TaskID.Value < out[j].t.TaskID.Value })
		return out
	}
	update := func(tk *mtask, s mesos.TaskState) {
		m.statusUpdate(links[tk.agentID], &msgStatusUpdate{FrameworkID: tk.t.FrameworkID,
			Status: mesos.TaskStatus{TaskID: tk.t.TaskID, State: s.Enum(), UUID: []byte(uuid.NewString())}})
	}
	nextTask := 0
	for step := 0; step < 600; step++ {
		fw := fws[rng.Intn(len(fws))]
		if m.frameworks[fw.id] != fw {
			fw = fws[0]
		}
		var what string
		switch op := rng.Intn(100); {
		case op < 30: // offer, then launch on it
			ids := agentIDs()
			a := m.agents[ids[rng.Intn(len(ids))]]
			o := m.tryOffer(fw, a, m.freeResources(a), time.Now())
			what = "offer"
			if o == nil || rng.Intn(4) == 0 {
				break
			}
			port := mtResourceByName(o.Resources, "ports")
			if port == nil {
				break
			}
			var tasks []mesos.TaskInfo
			exec := &mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: fmt.Sprintf("exec-%d", rng.Intn(3))},
				Command:   &mesos.CommandInfo{Value: proto.String("true")},
				Resources: []mesos.Resource{mtScalar("cpus", 0.1), mtScalar("mem", 32)}}
			n := 1 + rng.Intn(5)
			for k := 0; k < n; k++ {
				p := port.GetRanges().Range[0].Begin + uint64(k)
				res := []mesos.Resource{mtScalar("cpus", 0.01), mtScalar("mem", 1), mtPortRange(p, p)}
				for i := range res {
					res[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String("mysos")}
				}
				for i := range exec.Resources {
					exec.Resources[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String("mysos")}
				}
				ti := mesos.TaskInfo{Name: "t", TaskID: mesos.TaskID{Value: fmt.Sprintf("task-%d", nextTask)},
					AgentID: mesos.AgentID{Value: a.id}, Resources: res, Executor: exec}
				nextTask++
				tasks = append(tasks, ti)
			}
			m.accept(fw, &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{o.ID},
				Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH,
					Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}}})
			what = "launch"
		case op < 40: // decline
			if os := offersOf(fw); len(os) > 0 {
				m.decline(fw, []mesos.OfferID{{Value: os[0].id}}, &mesos.Filters{RefuseSeconds: proto.Float64(0)})
			}
			what = "decline"
		case op < 45: // rescind
			if os := offersOf(fw); len(os) > 0 {
				m.removeOffer(os[len(os)-1], true)
			}
			what = "rescind"
		case op < 60: // running
			if ts := liveTasks(); len(ts) > 0 {
				update(ts[rng.Intn(len(ts))], mesos.TASK_RUNNING)
			}
			what = "running"
		case op < 80: // kill or finish
			if ts := liveTasks(); len(ts) > 0 {
				s := mesos.TASK_KILLED
				if rng.Intn(2) == 0 {
					s = mesos.TASK_FINISHED
				}
				update(ts[rng.Intn(len(ts))], s)
			}
			what = "terminal update"
		case op < 85: // executor exits
			for aid, es := range fw.executors {
				for eid := range es {
					m.exitedExecutor(links[aid], &msgExitedExecutor{FrameworkID: mesos.FrameworkID{Value: fw.id}, ExecutorID: mesos.ExecutorID{Value: eid}})
					break
				}
				break
			}
			what = "executor exit"
		case op < 95: // re-registration, maybe after being unreachable
			ids := agentIDs()
			a := m.agents[ids[rng.Intn(len(ids))]]
			if rng.Intn(2) == 0 {
				m.markUnreachable(a)
			}
			var r msgRegisterAgent
			r.Info = a.info
			r.Info.ID = &mesos.AgentID{Value: a.id}
			for _, f := range m.frameworks {
				r.Frameworks = append(r.Frameworks, f.info)
				for _, e := range f.executors[a.id] {
					if rng.Intn(5) > 0 {
						r.Executors = append(r.Executors, e.info)
					}
				}
				for _, tk := range f.tasks {
					if tk.agentID == a.id && !isTerminal(tk.state()) && rng.Intn(10) > 0 {
						rt := *proto.Clone(&tk.t).(*mesos.Task)
						if rt.GetState() == mesos.TASK_UNREACHABLE {
							rt.State = mesos.TASK_RUNNING.Enum()
						}
						r.Tasks = append(r.Tasks, rt)
					}
				}
			}
			l := newAgentLink()
			m.registerAgent(l, &r)
			links[a.id] = l
			what = "re-registration"
		default: // an allocation round
			m.mu.Unlock()
			m.allocate()
			m.mu.Lock()
			what = "allocation round"
		}
		check(fmt.Sprintf("step %d (%s)", step, what))
		if step == 500 {
			m.removeFramework(fws[1])
			check("framework removal")
		}
	}
	if nextTask < 100 {
		t.Fatalf("only %d tasks launched", nextTask)
	}
}
