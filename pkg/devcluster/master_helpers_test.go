package devcluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// mtTestMaster is a master behind a real HTTP server.
type mtTestMaster struct {
	m   *Master
	srv *httptest.Server
	url string
}

func mtNewTestMaster(t *testing.T) *mtTestMaster {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := NewMaster(MasterConfig{Listen: ln.Addr().String(), Timeouts: FastTimeouts()}, log)
	srv := httptest.NewUnstartedServer(m)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tm := &mtTestMaster{m: m, srv: srv, url: srv.URL + "/api/v1/scheduler"}
	t.Cleanup(func() {
		m.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return tm
}

// post sends one call and returns status and body.
func (tm *mtTestMaster) post(t *testing.T, contentType, accept, streamID string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tm.url, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if streamID != "" {
		req.Header.Set("Mesos-Stream-Id", streamID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (tm *mtTestMaster) postJSON(t *testing.T, streamID, body string) (int, string) {
	t.Helper()
	code, b, _ := tm.post(t, mediaJSON, mediaJSON, streamID, []byte(body))
	return code, b
}

// mtSubscription is an open SUBSCRIBE stream whose events are decoded (and
// checked for proto2 required fields) as they arrive.
type mtSubscription struct {
	resp     *http.Response
	streamID string
	fwID     string
	events   chan *scheduler.Event
	done     chan struct{}
	errMu    sync.Mutex
	err      error
}

func (tm *mtTestMaster) subscribe(t *testing.T, media string, body []byte) *mtSubscription {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tm.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", media)
	req.Header.Set("Accept", media)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("SUBSCRIBE: %d %s", resp.StatusCode, b)
	}
	s := &mtSubscription{resp: resp, streamID: resp.Header.Get("Mesos-Stream-Id"),
		events: make(chan *scheduler.Event, 1000), done: make(chan struct{})}
	t.Cleanup(func() { resp.Body.Close() })
	go s.read(media)
	return s
}

func (tm *mtTestMaster) subscribeJSON(t *testing.T, body string) *mtSubscription {
	t.Helper()
	s := tm.subscribe(t, mediaJSON, []byte(body))
	ev := s.next(t, func(e *scheduler.Event) bool { return true })
	if ev.Type != scheduler.Event_SUBSCRIBED {
		t.Fatalf("first event %v, want SUBSCRIBED", ev.Type)
	}
	s.fwID = ev.Subscribed.FrameworkID.Value
	return s
}

func (s *mtSubscription) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

func (s *mtSubscription) read(media string) {
	defer close(s.done)
	br := bufio.NewReader(s.resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(line, "\n"))
		if err != nil || n <= 0 {
			s.setErr(fmt.Errorf("bad RecordIO length %q", line))
			return
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			s.setErr(err)
			return
		}
		ev := &scheduler.Event{}
		if media == mediaProtobuf {
			if err := ev.Unmarshal(payload); err != nil {
				s.setErr(fmt.Errorf("protobuf event does not decode: %v", err))
				return
			}
		} else {
			if bytes.Contains(payload, []byte("\n")) {
				s.setErr(fmt.Errorf("newline inside a JSON record"))
			}
			var generic map[string]any
			if err := json.Unmarshal(payload, &generic); err != nil {
				s.setErr(err)
				return
			}
			if missing := missingRequired(generic, "mesos.scheduler.Event", ""); len(missing) > 0 {
				s.setErr(fmt.Errorf("event %s misses required fields %v", payload, missing))
			}
			if err := json.Unmarshal(payload, ev); err != nil {
				s.setErr(fmt.Errorf("JSON event does not decode: %v", err))
				return
			}
			// Round-trip through protobuf: mesos-go's decoder checks
			// required fields.
			pb, err := ev.Marshal()
			if err == nil {
				err = (&scheduler.Event{}).Unmarshal(pb)
			}
			if err != nil {
				s.setErr(fmt.Errorf("event %s fails protobuf round trip: %v", payload, err))
			}
		}
		s.events <- ev
	}
}

// next returns the first event (HEARTBEATs skipped unless asked for) that
// matches pred, failing after a deadline.
func (s *mtSubscription) next(t *testing.T, pred func(*scheduler.Event) bool) *scheduler.Event {
	t.Helper()
	return s.nextWithin(t, 5*time.Second, pred)
}

func (s *mtSubscription) nextWithin(t *testing.T, d time.Duration, pred func(*scheduler.Event) bool) *scheduler.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.events:
			s.checkErr(t)
			if ev.Type == scheduler.Event_HEARTBEAT && !pred(ev) {
				continue
			}
			if pred(ev) {
				return ev
			}
		case <-s.done:
			// drain what is buffered first
			select {
			case ev := <-s.events:
				if pred(ev) {
					return ev
				}
				continue
			default:
			}
			s.checkErr(t)
			t.Fatalf("stream ended while waiting for an event")
		case <-deadline:
			t.Fatalf("no matching event within %v", d)
		}
	}
}

// none asserts that no event matching pred arrives within d.
func (s *mtSubscription) none(t *testing.T, d time.Duration, pred func(*scheduler.Event) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.events:
			if pred(ev) {
				t.Fatalf("unexpected event %v", ev)
			}
		case <-deadline:
			return
		}
	}
}

func (s *mtSubscription) checkErr(t *testing.T) {
	t.Helper()
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err != nil {
		t.Fatal(s.err)
	}
}

// waitClosed waits until the server ends the stream.
func (s *mtSubscription) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stream not closed")
	}
}

func mtIsType(tp scheduler.Event_Type) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool { return e.Type == tp }
}

func mtIsUpdate(taskID string) func(*scheduler.Event) bool {
	return func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == taskID
	}
}

// mtFakeAgent is the agent side of a link, driven by the test.
type mtFakeAgent struct {
	l       *link
	mu      sync.Mutex
	id      string
	msgs    chan any
	noPongs bool
}

func mtNewFakeAgent(t *testing.T, m *Master) *mtFakeAgent {
	fa := &mtFakeAgent{msgs: make(chan any, 1000)}
	var l *link
	l = newLink(func(msg any) {
		switch x := msg.(type) {
		case msgPing:
			fa.mu.Lock()
			id := fa.id
			fa.mu.Unlock()
			l.sendToMaster(msgPong{AgentID: mesos.AgentID{Value: id}})
			return
		case msgRegistered:
			fa.mu.Lock()
			fa.id = x.AgentID.Value
			fa.mu.Unlock()
		}
		fa.msgs <- msg
	}, func(msg any) { m.HandleAgentMessage(l, msg) })
	fa.l = l
	t.Cleanup(l.close)
	return fa
}

func mtScalar(name string, v float64) mesos.Resource {
	t := mesos.SCALAR
	return mesos.Resource{Name: name, Type: &t, Scalar: &mesos.Value_Scalar{Value: v}}
}

func mtPortRange(b, e uint64) mesos.Resource {
	t := mesos.RANGES
	return mesos.Resource{Name: "ports", Type: &t, Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: b, End: e}}}}
}

func mtTestAgentResources() []mesos.Resource {
	return []mesos.Resource{mtPortRange(31000, 31100), mtScalar("cpus", 2), mtScalar("mem", 2048), mtScalar("disk", 4096)}
}

// register registers the fake agent and returns its id.
func (fa *mtFakeAgent) register(t *testing.T, info mesos.AgentInfo) string {
	t.Helper()
	fa.l.sendToMaster(msgRegisterAgent{Info: info})
	msg := fa.expect(t, func(m any) bool { _, ok := m.(msgRegistered); return ok })
	return msg.(msgRegistered).AgentID.Value
}

func (fa *mtFakeAgent) expect(t *testing.T, pred func(any) bool) any {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-fa.msgs:
			if pred(m) {
				return m
			}
		case <-deadline:
			t.Fatal("agent did not get the expected message")
		}
	}
}

func mtDefaultAgentInfo() mesos.AgentInfo {
	return mesos.AgentInfo{Hostname: "agent-1", Port: proto.Int32(5051), Resources: mtTestAgentResources()}
}

const (
	mtFwInfoPA = `{"user":"root","name":"mysos-golden","principal":"mysos-principal","roles":["mysos"],` +
		`"capabilities":[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"},{"type":"RESERVATION_REFINEMENT"}],` +
		`"checkpoint":true,"failover_timeout":604800.0}`
	mtFwInfoLegacy = `{"user":"root","name":"legacy","roles":["mysos"],"capabilities":[{"type":"MULTI_ROLE"}],"failover_timeout":60}`
)

func mtSubscribeBody(info string) string {
	return `{"type":"SUBSCRIBE","subscribe":{"framework_info":` + info + `}}`
}

func mtCallBody(fwID, typ, field, payload string) string {
	s := `{"framework_id":{"value":"` + fwID + `"},"type":"` + typ + `"`
	if field != "" {
		s += `,"` + field + `":` + payload
	}
	return s + "}"
}

func mtResourceByName(rs []mesos.Resource, name string) *mesos.Resource {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}
