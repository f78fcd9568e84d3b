package devcluster

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// p1Master starts a master with the given timeouts and registry behind a
// real HTTP server, as mtNewTestMaster does.
func p1Master(t *testing.T, to Timeouts, reg *registry) *mtTestMaster {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMaster(MasterConfig{Listen: ln.Addr().String(), Timeouts: to, registry: reg},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewUnstartedServer(m)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		m.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return &mtTestMaster{m: m, srv: srv, url: srv.URL + "/api/v1/scheduler"}
}

// p1Task is a task as an agent reports it when it re-registers.
func p1Task(fwID, agentID, taskID string) mesos.Task {
	return mesos.Task{
		Name: taskID, TaskID: mesos.TaskID{Value: taskID}, FrameworkID: mesos.FrameworkID{Value: fwID},
		AgentID: mesos.AgentID{Value: agentID}, State: mesos.TASK_RUNNING.Enum(),
		Resources: []mesos.Resource{mtScalar("cpus", 0.1), mtScalar("mem", 32)},
	}
}

// reregister re-registers a fake agent under id, reporting tasks, and
// waits for the answer.
func (fa *mtFakeAgent) reregister(t *testing.T, id string, fw mesos.FrameworkInfo, tasks ...mesos.Task) any {
	t.Helper()
	info := mtDefaultAgentInfo()
	info.ID = &mesos.AgentID{Value: id}
	msg := msgRegisterAgent{Info: info, Tasks: tasks}
	if len(tasks) > 0 {
		msg.Frameworks = []mesos.FrameworkInfo{fw}
	}
	fa.l.sendToMaster(msg)
	return fa.expect(t, func(m any) bool {
		switch m.(type) {
		case msgRegistered, msgShutdownAgent:
			return true
		}
		return false
	})
}

func p1Reconcile(t *testing.T, tm *mtTestMaster, s *mtSubscription, tasks string) {
	t.Helper()
	if code, body := tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "RECONCILE", "reconcile", `{"tasks":[`+tasks+`]}`)); code != http.StatusAccepted {
		t.Fatalf("RECONCILE: %d %s", code, body)
	}
}

func p1Update(t *testing.T, s *mtSubscription) mesos.TaskStatus {
	t.Helper()
	return s.next(t, mtIsType(scheduler.Event_UPDATE)).Update.Status
}

// During the agent re-registration window a new master withholds answers
// about tasks on agents of its registry that are not back yet, answers for
// the tasks it knows, and answers for the others once their agent is back.
func TestP1ReconcileDuringAgentReregistration(t *testing.T) {
	reg := newRegistry()
	to := FastTimeouts()
	to.AgentReregistration = time.Minute
	to.MasterRecovery = 0
	old := p1Master(t, to, reg)
	fa1, fa2 := mtNewFakeAgent(t, old.m), mtNewFakeAgent(t, old.m)
	id1 := fa1.register(t, mtDefaultAgentInfo())
	id2 := fa2.register(t, mtDefaultAgentInfo())
	old.m.Close()

	tm := p1Master(t, to, reg)
	if refusing, awaiting := tm.m.Recovering(); refusing || awaiting != 2 {
		t.Fatalf("Recovering() = %v, %d; want false, 2", refusing, awaiting)
	}
	s := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
	fw := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: s.fwID}, User: "root", Name: "mysos-golden", Checkpoint: proto.Bool(true)}

	b1 := mtNewFakeAgent(t, tm.m)
	if _, ok := b1.reregister(t, id1, fw, p1Task(s.fwID, id1, "t1")).(msgRegistered); !ok {
		t.Fatal("agent 1 was not re-registered")
	}

	// t2's agent is not back: no answer. Events are ordered, so t1's answer
	// arriving first proves there was none for t2 (nor for t3, sent without
	// an agent id while an agent is missing).
	p1Reconcile(t, tm, s, `{"task_id":{"value":"t2"},"agent_id":{"value":"`+id2+`"}},{"task_id":{"value":"t3"}},`+
		`{"task_id":{"value":"t1"},"agent_id":{"value":"`+id1+`"}}`)
	st := p1Update(t, s)
	if st.TaskID.Value != "t1" || st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Fatalf("first answer %v %v %v, want t1 TASK_RUNNING REASON_RECONCILIATION", st.TaskID.Value, st.GetState(), st.GetReason())
	}
	// Implicit reconciliation covers the tasks known so far: t1 only.
	p1Reconcile(t, tm, s, ``)
	if st := p1Update(t, s); st.TaskID.Value != "t1" {
		t.Fatalf("implicit answer for %s, want t1", st.TaskID.Value)
	}
	p1Reconcile(t, tm, s, `{"task_id":{"value":"t1"},"agent_id":{"value":"`+id1+`"}}`)
	if st := p1Update(t, s); st.TaskID.Value != "t1" {
		t.Fatalf("implicit reconciliation answered %s too, want only t1", st.TaskID.Value)
	}

	// Agent 2 comes back with t2: now t2 is answered, and an unknown task
	// on a registered agent is TASK_GONE.
	b2 := mtNewFakeAgent(t, tm.m)
	if _, ok := b2.reregister(t, id2, fw, p1Task(s.fwID, id2, "t2")).(msgRegistered); !ok {
		t.Fatal("agent 2 was not re-registered")
	}
	if _, awaiting := tm.m.Recovering(); awaiting != 0 {
		t.Fatalf("%d agents still awaited", awaiting)
	}
	p1Reconcile(t, tm, s, `{"task_id":{"value":"t2"},"agent_id":{"value":"`+id2+`"}},{"task_id":{"value":"t9"},"agent_id":{"value":"`+id2+`"}}`)
	if st := p1Update(t, s); st.TaskID.Value != "t2" || st.GetState() != mesos.TASK_RUNNING {
		t.Fatalf("answer %s %v, want t2 TASK_RUNNING", st.TaskID.Value, st.GetState())
	}
	if st := p1Update(t, s); st.TaskID.Value != "t9" || st.GetState() != mesos.TASK_GONE {
		t.Fatalf("answer %s %v, want t9 TASK_GONE", st.TaskID.Value, st.GetState())
	}
}

// Agents that do not re-register within the window are marked unreachable.
func TestP1AgentReregistrationTimeout(t *testing.T) {
	reg := newRegistry()
	to := FastTimeouts()
	to.AgentReregistration = 200 * time.Millisecond
	to.MasterRecovery = time.Minute // ended by the window's end
	old := p1Master(t, to, reg)
	id := mtNewFakeAgent(t, old.m).register(t, mtDefaultAgentInfo())
	old.m.Close()

	tm := p1Master(t, to, reg)
	if code, _ := tm.postJSON(t, "", mtSubscribeBody(mtFwInfoPA)); code != http.StatusServiceUnavailable {
		t.Fatalf("SUBSCRIBE while recovering: %d, want 503", code)
	}
	waitFor(t, "re-registration window to end", func() bool { refusing, n := tm.m.Recovering(); return !refusing && n == 0 })
	s := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
	p1Reconcile(t, tm, s, `{"task_id":{"value":"t1"},"agent_id":{"value":"`+id+`"}}`)
	if st := p1Update(t, s); st.GetState() != mesos.TASK_UNREACHABLE || st.UnreachableTime == nil {
		t.Fatalf("answer %v (unreachable_time %v), want TASK_UNREACHABLE with unreachable_time", st.GetState(), st.UnreachableTime)
	}
}

// While recovering the master answers 503 to every scheduler call; the
// phase ends when the registry's agents are back.
func TestP1ServiceUnavailableWhileRecovering(t *testing.T) {
	reg := newRegistry()
	to := FastTimeouts()
	to.MasterRecovery = time.Minute
	to.AgentReregistration = time.Minute
	old := p1Master(t, to, reg)
	id := mtNewFakeAgent(t, old.m).register(t, mtDefaultAgentInfo())
	old.m.Close()

	tm := p1Master(t, to, reg)
	for _, body := range []string{mtSubscribeBody(mtFwInfoPA), mtCallBody("x", "REVIVE", "", "")} {
		code, msg := tm.postJSON(t, "", body)
		if code != http.StatusServiceUnavailable || msg != "Master has not finished recovery" {
			t.Fatalf("while recovering: %d %q, want 503", code, msg)
		}
	}
	// Even a GET gets 503 before 405, as in Mesos.
	resp, err := http.Get(tm.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET while recovering: %d, want 503", resp.StatusCode)
	}
	if _, ok := mtNewFakeAgent(t, tm.m).reregister(t, id, mesos.FrameworkInfo{}).(msgRegistered); !ok {
		t.Fatal("agent was not re-registered")
	}
	waitFor(t, "recovery to end", func() bool { refusing, _ := tm.m.Recovering(); return !refusing })
	tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
}

// --offer_timeout rescinds offers held too long; the resources come back.
func TestP1OfferTimeout(t *testing.T) {
	to := FastTimeouts()
	to.OfferTimeout = 200 * time.Millisecond
	tm := p1Master(t, to, nil)
	mtNewFakeAgent(t, tm.m).register(t, mtDefaultAgentInfo())
	s := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
	first := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0].ID.Value
	ev := s.next(t, mtIsType(scheduler.Event_RESCIND))
	if ev.Rescind.OfferID.Value != first {
		t.Fatalf("RESCIND of %s, want %s", ev.Rescind.OfferID.Value, first)
	}
	again := s.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	if again.ID.Value == first || mtResourceByName(again.Resources, "cpus").GetScalar().GetValue() != 2 {
		t.Fatalf("re-offer %v, want a new offer of every resource", again)
	}
}

// An agent marked gone: its tasks are TASK_GONE_BY_OPERATOR (TASK_LOST for
// a framework that is not partition-aware), its offers rescinded, FAILURE
// sent, the agent told to shut down and refused from then on, also by a
// new master.
func TestP1MarkAgentGone(t *testing.T) {
	reg := newRegistry()
	tm := p1Master(t, FastTimeouts(), reg)
	fa := mtNewFakeAgent(t, tm.m)
	id := fa.register(t, mtDefaultAgentInfo())
	pa := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
	legacy := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoLegacy))
	fwPA := mesos.FrameworkInfo{ID: &mesos.FrameworkID{Value: pa.fwID}, User: "root", Name: "pa"}
	info := mtDefaultAgentInfo()
	info.ID = &mesos.AgentID{Value: id}
	fa.l.sendToMaster(msgRegisterAgent{Info: info,
		Frameworks: []mesos.FrameworkInfo{fwPA, {ID: &mesos.FrameworkID{Value: legacy.fwID}, User: "root", Name: "legacy"}},
		Tasks:      []mesos.Task{p1Task(pa.fwID, id, "t-pa"), p1Task(legacy.fwID, id, "t-legacy")}})
	fa.expect(t, func(m any) bool { _, ok := m.(msgRegistered); return ok })
	// Hold an offer so that there is one to rescind.
	var offered string
	for offered == "" {
		select {
		case ev := <-pa.events:
			if ev.Type == scheduler.Event_OFFERS {
				offered = ev.Offers.Offers[0].ID.Value
			}
		case ev := <-legacy.events:
			if ev.Type == scheduler.Event_OFFERS {
				offered = ev.Offers.Offers[0].ID.Value
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no offer")
		}
	}

	if err := tm.m.MarkAgentGone(id); err != nil {
		t.Fatal(err)
	}
	if err := tm.m.MarkAgentGone("no-such-agent"); err == nil {
		t.Fatal("marking an unknown agent gone succeeded")
	}
	rescinded := false
	for _, s := range []*mtSubscription{pa, legacy} {
		want, task := mesos.TASK_GONE_BY_OPERATOR, "t-pa"
		if s == legacy {
			want, task = mesos.TASK_LOST, "t-legacy"
		}
		for {
			ev := s.next(t, func(e *scheduler.Event) bool {
				return e.Type == scheduler.Event_RESCIND || e.Type == scheduler.Event_UPDATE || e.Type == scheduler.Event_FAILURE
			})
			if ev.Type == scheduler.Event_RESCIND {
				rescinded = rescinded || ev.Rescind.OfferID.Value == offered
				continue
			}
			if ev.Type == scheduler.Event_FAILURE {
				t.Fatalf("FAILURE before the task update on %s", s.fwID)
			}
			st := ev.Update.Status
			if st.TaskID.Value != task || st.GetState() != want || st.GetReason() != mesos.REASON_AGENT_REMOVED_BY_OPERATOR ||
				st.GetSource() != mesos.SOURCE_MASTER || len(st.UUID) != 0 {
				t.Fatalf("update %s %v %v %v, want %s %v REASON_AGENT_REMOVED_BY_OPERATOR from the master", st.TaskID.Value,
					st.GetState(), st.GetReason(), st.GetSource(), task, want)
			}
			break
		}
		ev := s.next(t, mtIsType(scheduler.Event_FAILURE))
		if ev.Failure.AgentID.GetValue() != id || ev.Failure.ExecutorID != nil {
			t.Fatalf("FAILURE %v, want agent %s only", ev.Failure, id)
		}
	}
	if !rescinded {
		t.Fatal("the agent's offer was not rescinded")
	}
	fa.expect(t, func(m any) bool { _, ok := m.(msgShutdownAgent); return ok })
	if _, ok := fa.reregister(t, id, fwPA).(msgShutdownAgent); !ok {
		t.Fatal("a gone agent was re-registered")
	}
	p1Reconcile(t, tm, pa, `{"task_id":{"value":"t-pa"},"agent_id":{"value":"`+id+`"}}`)
	if st := p1Update(t, pa); st.GetState() != mesos.TASK_GONE_BY_OPERATOR {
		t.Fatalf("reconcile on a gone agent: %v, want TASK_GONE_BY_OPERATOR", st.GetState())
	}

	// A new master knows from the registry that the agent is gone.
	tm.m.Close()
	next := p1Master(t, FastTimeouts(), reg)
	if _, ok := mtNewFakeAgent(t, next.m).reregister(t, id, fwPA).(msgShutdownAgent); !ok {
		t.Fatal("a new master re-registered a gone agent")
	}
}
