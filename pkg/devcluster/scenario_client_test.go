package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// scClient is a small scheduler for the whole-cluster scenarios and the
// benchmarks: it speaks the v1 scheduler API over raw HTTP with the
// protobuf codec and RecordIO framing, as a real framework would, and keeps
// every event it received in order so that tests can wait for events with a
// deadline and check their order.
type scClient struct {
	tb     testing.TB
	url    string
	info   mesos.FrameworkInfo
	http   *http.Client
	ackCh  chan scheduler.Call_Acknowledge
	quit   chan struct{}
	wg     sync.WaitGroup
	closer sync.Once

	mu       sync.Mutex
	fwID     string
	streamID string
	cancel   context.CancelFunc
	done     chan struct{} // closed when the current stream ends
	events   []*scheduler.Event
	base     int // absolute index of events[0] (see forget)
	changed  chan struct{}
	autoAck  bool
	ackErr   error
	acksOut  int // acknowledgements queued or in flight

	// offerCursor is where offerWhere looks for the next offer (test
	// goroutine only).
	offerCursor int
	// used are the offers this client accepted or declined (under mu).
	used map[string]bool
}

// scFrameworkInfo is the framework of the scenarios: PARTITION_AWARE,
// checkpointing, MULTI_ROLE with reservation refinement, role "mysos".
func scFrameworkInfo(checkpoint bool) mesos.FrameworkInfo {
	return mesos.FrameworkInfo{
		User: "tester", Name: "scenario", Principal: aptr("mysos-principal"),
		Roles: []string{"mysos"}, Checkpoint: aptr(checkpoint), FailoverTimeout: aptr(3600.0),
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
			{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE},
			{Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT},
		},
	}
}

// newScClient makes a client; subscribe connects it. With autoAck every
// update carrying a uuid is acknowledged in the background.
func newScClient(tb testing.TB, masterURL string, info mesos.FrameworkInfo, autoAck bool) *scClient {
	c := &scClient{
		tb: tb, url: masterURL + "/api/v1/scheduler", info: info, autoAck: autoAck,
		http:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		ackCh:   make(chan scheduler.Call_Acknowledge, 1<<16),
		quit:    make(chan struct{}),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	close(c.done)
	for range 4 {
		c.wg.Add(1)
		go c.ackWorker()
	}
	tb.Cleanup(c.close)
	return c
}

func (c *scClient) close() {
	c.closer.Do(func() {
		close(c.quit)
		c.mu.Lock()
		if c.cancel != nil {
			c.cancel()
		}
		done := c.done
		c.mu.Unlock()
		<-done
		c.wg.Wait()
		c.http.CloseIdleConnections()
	})
}

// subscribe opens a SUBSCRIBE stream (with the framework id once known, so
// a second call is a re-subscription) and waits for SUBSCRIBED.
func (c *scClient) subscribe() *scheduler.Event_Subscribed {
	c.tb.Helper()
	c.mu.Lock()
	info := c.info
	if c.fwID != "" {
		info.ID = &mesos.FrameworkID{Value: c.fwID}
	}
	c.mu.Unlock()
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	if info.ID != nil {
		call.FrameworkID = info.ID
	}
	body, err := call.Marshal()
	if err != nil {
		c.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.postSubscribe(ctx, body)
	if err != nil {
		cancel()
		c.tb.Fatalf("SUBSCRIBE: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		c.tb.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, b)
	}
	from := c.mark()
	done := make(chan struct{})
	c.mu.Lock()
	c.streamID = resp.Header.Get(streamIDHeader)
	c.cancel = cancel
	c.done = done
	c.mu.Unlock()
	go c.read(resp.Body, done)
	_, ev := c.await(from, "SUBSCRIBED", isEvent(scheduler.Event_SUBSCRIBED))
	c.mu.Lock()
	c.fwID = ev.Subscribed.FrameworkID.Value
	c.mu.Unlock()
	return ev.Subscribed
}

// postSubscribe sends SUBSCRIBE on a fresh connection, as frameworks do
// after losing a master: a kept-alive connection to a master that restarted
// is dead. A connection error is retried a few times, as mesos-go does.
func (c *scClient) postSubscribe(ctx context.Context, body []byte) (*http.Response, error) {
	var err error
	for attempt := range 5 {
		c.http.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
		req.Header.Set("Content-Type", mediaProtobuf)
		req.Header.Set("Accept", mediaProtobuf)
		var resp *http.Response
		if resp, err = c.http.Do(req); err == nil {
			return resp, nil
		}
		backoff := time.NewTimer(time.Duration(attempt+1) * 20 * time.Millisecond)
		select {
		case <-backoff.C:
		case <-ctx.Done():
			backoff.Stop()
			return nil, ctx.Err()
		}
	}
	return nil, err
}

// read decodes RecordIO records of protobuf events until the stream ends.
func (c *scClient) read(body io.ReadCloser, done chan struct{}) {
	defer close(done)
	defer body.Close()
	br := bufio.NewReaderSize(body, 1<<16)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || n < 0 {
			return
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		ev := &scheduler.Event{}
		if err := ev.Unmarshal(payload); err != nil {
			return
		}
		c.mu.Lock()
		c.events = append(c.events, ev)
		close(c.changed)
		c.changed = make(chan struct{})
		autoAck := c.autoAck
		c.mu.Unlock()
		if autoAck && ev.Type == scheduler.Event_UPDATE && len(ev.Update.Status.UUID) > 0 {
			c.enqueueAck(ev.Update.Status)
		}
	}
}

func (c *scClient) enqueueAck(st mesos.TaskStatus) {
	c.mu.Lock()
	c.acksOut++
	c.mu.Unlock()
	select {
	case c.ackCh <- scheduler.Call_Acknowledge{AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}:
	case <-c.quit:
	}
}

func (c *scClient) ackWorker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.quit:
			return
		case a := <-c.ackCh:
			if code, msg := c.post(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &a}); code != http.StatusAccepted {
				c.mu.Lock()
				if c.ackErr == nil {
					c.ackErr = fmt.Errorf("ACKNOWLEDGE: %d %s", code, msg)
				}
				c.mu.Unlock()
			}
			c.mu.Lock()
			c.acksOut--
			c.mu.Unlock()
		}
	}
}

// waitAcked waits until the background acknowledgements queued so far
// were answered, so that a fault injected next does not race them.
func (c *scClient) waitAcked() {
	c.tb.Helper()
	waitFor(c.tb, "the pending acknowledgements", func() bool {
		c.mu.Lock()
		n, err := c.acksOut, c.ackErr
		c.mu.Unlock()
		if err != nil {
			c.tb.Fatal(err)
		}
		return n == 0
	})
}

// post sends a non-SUBSCRIBE call on the current stream.
func (c *scClient) post(call *scheduler.Call) (int, string) {
	c.mu.Lock()
	call.FrameworkID = &mesos.FrameworkID{Value: c.fwID}
	sid := c.streamID
	c.mu.Unlock()
	body, err := call.Marshal()
	if err != nil {
		return 0, err.Error()
	}
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaProtobuf)
	req.Header.Set("Accept", mediaProtobuf)
	req.Header.Set(streamIDHeader, sid)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// call sends a call and fails unless it is accepted.
func (c *scClient) call(call *scheduler.Call) {
	c.tb.Helper()
	if code, msg := c.post(call); code != http.StatusAccepted {
		c.tb.Fatalf("%s: %d %s", call.Type, code, msg)
	}
}

func (c *scClient) frameworkID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fwID
}

// mark is the index the next event will get.
func (c *scClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + len(c.events)
}

// forget drops the events before index upTo (benchmarks keep no history).
func (c *scClient) forget(upTo int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := upTo - c.base; n > 0 {
		if n > len(c.events) {
			n = len(c.events)
		}
		c.events = append([]*scheduler.Event(nil), c.events[n:]...)
		c.base += n
	}
}

// since returns the events from index from on.
func (c *scClient) since(from int) []*scheduler.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from < c.base {
		from = c.base
	}
	return append([]*scheduler.Event(nil), c.events[from-c.base:]...)
}

const scDeadline = 20 * time.Second

// await returns the first event at index >= from that matches pred, and its
// index, failing after a deadline or if the stream ends first.
func (c *scClient) await(from int, what string, pred func(*scheduler.Event) bool) (int, *scheduler.Event) {
	c.tb.Helper()
	return c.awaitWithin(scDeadline, from, what, pred)
}

func (c *scClient) awaitWithin(d time.Duration, from int, what string, pred func(*scheduler.Event) bool) (int, *scheduler.Event) {
	c.tb.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if from < c.base {
			from = c.base
		}
		for i := from - c.base; i < len(c.events); i++ {
			if pred(c.events[i]) {
				ev := c.events[i]
				c.mu.Unlock()
				return c.base + i, ev
			}
		}
		from = c.base + len(c.events)
		changed, done := c.changed, c.done
		c.mu.Unlock()
		select {
		case <-changed:
		case <-done:
			// Look once more at what arrived before the end.
			c.mu.Lock()
			more := c.base+len(c.events) > from
			c.mu.Unlock()
			if !more {
				c.tb.Fatalf("stream ended while waiting for %s", what)
			}
		case <-deadline.C:
			c.tb.Fatalf("no %s within %v; events since: %s", what, d, describeEvents(c.since(from)))
		}
	}
}

// waitEnded waits until the current stream ends.
func (c *scClient) waitEnded() {
	c.tb.Helper()
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	select {
	case <-done:
	case <-time.After(scDeadline):
		c.tb.Fatal("the SUBSCRIBE stream did not end")
	}
}

func (c *scClient) checkAcks() {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ackErr != nil {
		c.tb.Fatal(c.ackErr)
	}
}

func describeEvents(evs []*scheduler.Event) string {
	var parts []string
	for _, e := range evs {
		s := e.Type.String()
		if e.Type == scheduler.Event_UPDATE {
			st := e.Update.Status
			s += fmt.Sprintf("(%s %s %s)", st.TaskID.Value, st.GetState(), st.GetReason())
		}
		parts = append(parts, s)
	}
	if len(parts) > 40 {
		parts = append(parts[:40], fmt.Sprintf("... %d more", len(parts)-40))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ---- predicates ---------------------------------------------------------

func isEvent(tp scheduler.Event_Type) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool { return e.Type == tp }
}

// isTaskUpdate matches an UPDATE of task in state.
func isTaskUpdate(task string, state mesos.TaskState) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == task && e.Update.Status.GetState() == state
	}
}

func isTaskUpdateWith(task string, state mesos.TaskState, reason mesos.TaskStatus_Reason) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool {
		return isTaskUpdate(task, state)(e) && e.Update.Status.GetReason() == reason
	}
}

// isOfferOn matches OFFERS with an offer for agentID.
func isOfferOn(agentID string) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool { return offerOn(e, agentID) != nil }
}

func offerOn(e *scheduler.Event, agentID string) *mesos.Offer {
	if e.Type != scheduler.Event_OFFERS {
		return nil
	}
	for i := range e.Offers.Offers {
		if e.Offers.Offers[i].AgentID.Value == agentID {
			return &e.Offers.Offers[i]
		}
	}
	return nil
}

// unusedOffer waits for an offer on agentID that is still outstanding:
// neither accepted, declined nor rescinded, whenever it arrived. Waiting
// only for offers after a mark would miss one the master made a moment
// before (the leftovers of an ACCEPT are offered again at once), and that
// offer, never used, would keep those resources from any later one.
func (c *scClient) unusedOffer(agentID string) mesos.Offer {
	c.tb.Helper()
	var found *mesos.Offer
	c.await(0, "an unused offer on "+agentID, func(e *scheduler.Event) bool {
		if o := offerOn(e, agentID); o != nil && !c.used[o.ID.Value] && !c.rescindedLocked(o.ID.Value) {
			found = o
			return true
		}
		return false
	})
	c.markUsed(found.ID)
	return *found
}

// rescindedLocked reports whether the master rescinded offer id. Caller
// holds c.mu.
func (c *scClient) rescindedLocked(id string) bool {
	for _, e := range c.events {
		if e.Type == scheduler.Event_RESCIND && e.Rescind.OfferID.Value == id {
			return true
		}
	}
	return false
}

// rescinded reports whether the master rescinded offer id (as far as the
// events received so far tell).
func (c *scClient) rescinded(id mesos.OfferID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rescindedLocked(id.Value)
}

// sync returns once every event the master queued for this framework
// before the call has arrived: it asks about a task that does not exist on
// agentID (a registered agent) and waits for the answer, which the master
// queues behind them. After an agent came back, for instance, the RESCIND
// of every offer the master withdrew then has arrived.
func (c *scClient) sync(agentID string) {
	c.tb.Helper()
	from := c.mark()
	id := fmt.Sprintf("sync-%d", from)
	c.reconcile(scheduler.Call_Reconcile_Task{TaskID: mesos.TaskID{Value: id}, AgentID: &mesos.AgentID{Value: agentID}})
	c.await(from, "the answer to the reconciliation of "+id, func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == id
	})
}

func (c *scClient) markUsed(ids ...mesos.OfferID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used == nil {
		c.used = map[string]bool{}
	}
	for _, id := range ids {
		c.used[id.Value] = true
	}
}

// nextOffer waits for an offer on agentID made at index >= from.
func (c *scClient) nextOffer(from int, agentID string) (int, mesos.Offer) {
	c.tb.Helper()
	i, ev := c.await(from, "offer on "+agentID, isOfferOn(agentID))
	return i, *offerOn(ev, agentID)
}

// ---- calls --------------------------------------------------------------

// accept sends ACCEPT of one offer with operations and no decline filter.
func (c *scClient) accept(offerID mesos.OfferID, ops ...mesos.Offer_Operation) {
	c.tb.Helper()
	c.markUsed(offerID)
	c.call(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
		OfferIDs: []mesos.OfferID{offerID}, Operations: ops, Filters: &mesos.Filters{RefuseSeconds: aptr(0.0)},
	}})
}

func (c *scClient) ack(st mesos.TaskStatus) {
	c.tb.Helper()
	c.call(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
		AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
}

func (c *scClient) kill(task, agentID string) {
	c.tb.Helper()
	c.call(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{
		TaskID: mesos.TaskID{Value: task}, AgentID: &mesos.AgentID{Value: agentID}}})
}

// reconcile sends RECONCILE; no tasks is an implicit reconciliation.
func (c *scClient) reconcile(tasks ...scheduler.Call_Reconcile_Task) {
	c.tb.Helper()
	c.call(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{Tasks: tasks}})
}

func launchOp(tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}
}

// ---- resources and tasks ------------------------------------------------

func scScalar(name string, v float64) mesos.Resource {
	r := agentScalar(name, v)
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: aptr("mysos")}
	return r
}

// scExecutor is the test binary as a custom executor (mode "normal":
// TASK_RUNNING on LAUNCH, TASK_KILLED on KILL, running until then).
func scExecutor(tb testing.TB, id string) *mesos.ExecutorInfo {
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return &mesos.ExecutorInfo{
		ExecutorID: mesos.ExecutorID{Value: id},
		Type:       mesos.ExecutorInfo_CUSTOM,
		Command: &mesos.CommandInfo{
			Value: aptr(exe), Shell: aptr(false), Arguments: []string{"test-executor"},
			Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: testExecutorEnv, Value: aptr("normal")}}},
		},
		Resources: []mesos.Resource{scScalar("cpus", 0.1), scScalar("mem", 32)},
	}
}

// scExecutorTask is a task for the custom executor.
func scExecutorTask(id, agentID string, exec *mesos.ExecutorInfo, cpus, mem float64) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: agentID},
		Executor:  exec,
		Resources: []mesos.Resource{scScalar("cpus", cpus), scScalar("mem", mem)},
	}
}

// ---- agent state --------------------------------------------------------

// scAgentState is the part of an agent's /state the scenarios read.
type scAgentState struct {
	ID         string            `json:"id"`
	Flags      map[string]string `json:"flags"`
	Registered bool              `json:"registered"`
	Frameworks []struct {
		ID        string `json:"id"`
		Executors []struct {
			ID        string `json:"id"`
			Pid       int    `json:"pid"`
			State     string `json:"state"`
			Directory string `json:"directory"`
			Tasks     []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"tasks"`
		} `json:"executors"`
	} `json:"frameworks"`
}

func agentState(tb testing.TB, c *Cluster, i int) scAgentState {
	tb.Helper()
	resp, err := http.Get("http://" + c.Agents()[i].Address + "/state")
	if err != nil {
		tb.Fatalf("agent %d /state: %v", i, err)
	}
	defer resp.Body.Close()
	var st scAgentState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		tb.Fatalf("agent %d /state: %v", i, err)
	}
	return st
}

// executorOf returns the pid and sandbox of a running executor of agent i.
func executorOf(tb testing.TB, c *Cluster, i int, fwID, execID string) (int, string) {
	tb.Helper()
	for _, fw := range agentState(tb, c, i).Frameworks {
		if fw.ID != fwID {
			continue
		}
		for _, ex := range fw.Executors {
			if ex.ID == execID && ex.Pid > 0 {
				return ex.Pid, ex.Directory
			}
		}
	}
	tb.Fatalf("agent %d runs no executor %s", i, execID)
	return 0, ""
}

// waitAgentsRegistered waits until every running agent says it is
// registered with the (current) master.
func waitAgentsRegistered(tb testing.TB, c *Cluster) {
	tb.Helper()
	for i := range c.AgentCount() {
		waitFor(tb, fmt.Sprintf("agent %d to register", i), func() bool { return agentState(tb, c, i).Registered })
	}
}

// startScCluster starts a cluster with FastTimeouts on a free port.
func startScCluster(tb testing.TB, agents int, resources string) *Cluster {
	tb.Helper()
	return startScClusterWith(tb, agents, resources, FastTimeouts())
}

func startScClusterWith(tb testing.TB, agents int, resources string, timeouts Timeouts) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := testLogger(nil)
	c, err := Start(ctx, Config{
		Listen: "127.0.0.1:0", Agents: agents, AgentResources: resources,
		WorkDir: tb.TempDir(), Timeouts: timeouts, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// writeTrigger asks the test executor (mode "normal") to send an update for
// task while it is disconnected from its agent (see runTestExecutor).
func writeTrigger(tb testing.TB, sandbox, task, state, message string) string {
	tb.Helper()
	path := filepath.Join(sandbox, triggerPrefix+task)
	if err := os.WriteFile(path+".tmp", []byte(state+"\n"+message), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		tb.Fatal(err)
	}
	return path + ".sent"
}
