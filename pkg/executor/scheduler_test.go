package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// testDeadline bounds every wait of the cluster tests.
const testDeadline = 20 * time.Second

const protobuf = "application/x-protobuf"

// testScheduler is a minimal v1 framework over raw HTTP, protobuf and
// RecordIO: checkpointing, PARTITION_AWARE, MULTI_ROLE with reservation
// refinement, role "mysos". It keeps every event in order and acknowledges
// every update carrying a uuid.
type testScheduler struct {
	t      *testing.T
	url    string
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	fwID     string
	streamID string
	events   []*scheduler.Event
	changed  chan struct{}
	ackErr   error
}

func newTestScheduler(t *testing.T, masterURL string) *testScheduler {
	t.Helper()
	s := &testScheduler{t: t, url: masterURL + "/api/v1/scheduler", client: &http.Client{}, changed: make(chan struct{}), done: make(chan struct{})}
	yes, role := true, "mysos"
	failover := 3600.0
	principal := "mysos-principal"
	info := mesos.FrameworkInfo{
		User: "tester", Name: "executor-test", Roles: []string{role}, Checkpoint: &yes,
		FailoverTimeout: &failover, Principal: &principal,
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
			{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE},
			{Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT},
		},
	}
	body, err := (&scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", protobuf)
	req.Header.Set("Accept", protobuf)
	// Only the wait for the response is bounded: the stream lasts the test.
	timer := time.AfterFunc(testDeadline, cancel)
	resp, err := s.client.Do(req)
	timer.Stop()
	if err != nil {
		cancel()
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("SUBSCRIBE: %s: %s", resp.Status, b)
	}
	s.streamID = resp.Header.Get("Mesos-Stream-Id")
	go s.read(resp.Body)
	t.Cleanup(s.close)
	s.waitFor(0, "SUBSCRIBED", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_SUBSCRIBED })
	return s
}

func (s *testScheduler) close() {
	s.cancel()
	<-s.done
}

func (s *testScheduler) read(body io.ReadCloser) {
	defer close(s.done)
	defer body.Close()
	r := recordio.NewReader(body)
	for {
		frame, err := r.ReadFrame()
		if err != nil {
			return
		}
		ev := new(scheduler.Event)
		if err := ev.Unmarshal(frame); err != nil {
			s.t.Errorf("bad event: %v", err)
			return
		}
		s.mu.Lock()
		if ev.Type == scheduler.Event_SUBSCRIBED {
			s.fwID = ev.Subscribed.FrameworkID.Value
		}
		s.events = append(s.events, ev)
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if ev.Type == scheduler.Event_UPDATE && len(ev.Update.Status.UUID) > 0 {
			st := ev.Update.Status
			err := s.post(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
				AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
			if err != nil {
				s.mu.Lock()
				s.ackErr = err
				s.mu.Unlock()
			}
		}
	}
}

// post sends a call and expects 202.
func (s *testScheduler) post(c *scheduler.Call) error {
	s.mu.Lock()
	c.FrameworkID = &mesos.FrameworkID{Value: s.fwID}
	stream := s.streamID
	s.mu.Unlock()
	body, err := c.Marshal()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", protobuf)
	req.Header.Set("Mesos-Stream-Id", stream)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", c.Type, resp.Status, b)
	}
	return nil
}

func (s *testScheduler) call(c *scheduler.Call) {
	s.t.Helper()
	if err := s.post(c); err != nil {
		s.t.Fatal(err)
	}
}

// mark is the index of the next event.
func (s *testScheduler) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// waitFor returns the first event from index from on that satisfies ok.
func (s *testScheduler) waitFor(from int, what string, ok func(*scheduler.Event) bool) (int, *scheduler.Event) {
	s.t.Helper()
	i, ev := s.waitForWithin(from, testDeadline, ok)
	if ev == nil {
		s.t.Fatalf("no %s within %v; events: %s", what, testDeadline, s.describe(from))
	}
	return i, ev
}

// waitForWithin is waitFor that returns (-1, nil) after d.
func (s *testScheduler) waitForWithin(from int, d time.Duration, ok func(*scheduler.Event) bool) (int, *scheduler.Event) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := from; i < len(s.events); i++ {
			if ev := s.events[i]; ok(ev) {
				s.mu.Unlock()
				return i, ev
			}
		}
		from = len(s.events)
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.done:
			s.t.Fatal("the scheduler's stream ended")
		case <-deadline.C:
			return -1, nil
		}
	}
}

func (s *testScheduler) eventsFrom(from int) []*scheduler.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*scheduler.Event(nil), s.events[from:]...)
}

func (s *testScheduler) describe(from int) string {
	var b bytes.Buffer
	for _, e := range s.eventsFrom(from) {
		switch e.Type {
		case scheduler.Event_UPDATE:
			st := e.Update.Status
			fmt.Fprintf(&b, "\n  UPDATE %s %s %s %q", st.TaskID.Value, st.GetState(), st.GetReason(), st.GetMessage())
		case scheduler.Event_HEARTBEAT:
		default:
			fmt.Fprintf(&b, "\n  %s", e.Type)
		}
	}
	return b.String()
}

// offer waits for an offer (from index from on) that satisfies ok,
// declining the others without a filter; it returns the index after it.
func (s *testScheduler) offer(from int, ok func(*mesos.Offer) bool) (int, mesos.Offer) {
	s.t.Helper()
	for {
		i, ev := s.waitFor(from, "OFFERS", func(e *scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS })
		from = i + 1
		for _, o := range ev.Offers.Offers {
			if ok(&o) {
				return from, o
			}
			refuse := 0.0
			s.call(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{
				OfferIDs: []mesos.OfferID{o.ID}, Filters: &mesos.Filters{RefuseSeconds: &refuse}}})
		}
	}
}

func (s *testScheduler) accept(offer mesos.OfferID, ops ...mesos.Offer_Operation) {
	s.t.Helper()
	s.call(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: []mesos.OfferID{offer}, Operations: ops}})
}

func (s *testScheduler) kill(taskID, agentID string) {
	s.t.Helper()
	s.call(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{
		TaskID: mesos.TaskID{Value: taskID}, AgentID: &mesos.AgentID{Value: agentID}}})
}

// update waits for an update of taskID in state.
func (s *testScheduler) update(from int, taskID string, state mesos.TaskState) (int, mesos.TaskStatus) {
	s.t.Helper()
	i, ev := s.waitFor(from, taskID+" "+state.String(), func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == taskID && e.Update.Status.GetState() == state
	})
	return i, ev.Update.Status
}

// states lists the states of taskID's updates from index from on.
func (s *testScheduler) states(from int, taskID string) []mesos.TaskState {
	var out []mesos.TaskState
	for _, e := range s.eventsFrom(from) {
		if e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == taskID {
			out = append(out, e.Update.Status.GetState())
		}
	}
	return out
}
