package devcluster

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Expectations from transcript 01-errors.
func TestMasterErrors(t *testing.T) {
	tm := mtNewTestMaster(t)
	sub := mtSubscribeBody(`{"user":"root","name":"err-probe","roles":["mysos"],"capabilities":[{"type":"MULTI_ROLE"}]}`)

	resp, err := http.Get(tm.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	cases := []struct {
		name, ct, accept, sid, body string
		code                        int
		text                        string
	}{
		{"no content type", "", mediaJSON, "", sub, 400, "Expecting 'Content-Type' to be present"},
		{"text/plain", "text/plain", mediaJSON, "", sub, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"charset", "application/json; charset=utf-8", mediaJSON, "", sub, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"case", "Application/JSON", mediaJSON, "", sub, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"malformed", mediaJSON, mediaJSON, "", `{"type":"SUBSCRIBE",`, 400, "Failed to parse body into JSON: syntax error at line 1 near: "},
		{"empty", mediaJSON, mediaJSON, "", ``, 400, "Failed to parse body into JSON"},
		{"not object", mediaJSON, mediaJSON, "", `[1,2]`, 400, "Failed to convert JSON into Call protobuf: Expecting a JSON object"},
		{"unknown type", mediaJSON, mediaJSON, "", `{"type":"FROBNICATE"}`, 400, "Failed to validate scheduler::Call: Expecting 'type' to be present"},
		{"no type", mediaJSON, mediaJSON, "", `{}`, 400, "Failed to validate scheduler::Call: Expecting 'type' to be present"},
		{"no subscribe", mediaJSON, mediaJSON, "", `{"type":"SUBSCRIBE"}`, 400, "Failed to validate scheduler::Call: Expecting 'subscribe' to be present"},
		{"missing required", mediaJSON, mediaJSON, "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"roles":["mysos"]}}}`, 400,
			"Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user, subscribe.framework_info.name"},
		{"wrong type", mediaJSON, mediaJSON, "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","failover_timeout":"soon"}}}`, 400,
			"Failed to convert JSON into Call protobuf"},
		{"accept html", mediaJSON, "text/html", "", sub, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"},
		{"subscribe with stream id", mediaJSON, mediaJSON, "11111111-2222-3333-4444-555555555555", sub, 400,
			"Subscribe calls should not include the 'Mesos-Stream-Id' header"},
		{"unknown framework", mediaJSON, mediaJSON, "", `{"framework_id":{"value":"00000000-0000-0000-0000-000000000000-0000"},"type":"REVIVE"}`, 400, "Framework cannot be found"},
		{"no framework id", mediaJSON, mediaJSON, "", `{"type":"REVIVE"}`, 400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"},
		{"protobuf garbage", mediaProtobuf, mediaProtobuf, "", "\xff\xff\xff", 400, "Failed to parse body into Call protobuf"},
		{"missing volume mode", mediaJSON, mediaJSON, "", `{"framework_id":{"value":"x"},"type":"ACCEPT","accept":{"offer_ids":[],"operations":[{"type":"CREATE","create":{"volumes":[{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"persistence":{"id":"v"},"volume":{"container_path":"d"}}}]}}]}}`, 400,
			"Failed to convert JSON into Call protobuf: Missing required fields: accept.operations[0].create.volumes[0].disk.volume.mode"},
	}
	for _, c := range cases {
		code, body, hdr := tm.post(t, c.ct, c.accept, c.sid, []byte(c.body))
		if code != c.code || !strings.HasPrefix(body, c.text) {
			t.Errorf("%s: got %d %q, want %d %q", c.name, code, body, c.code, c.text)
		}
		if hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", c.name, hdr.Get("Content-Type"))
		}
	}

	// Roles without MULTI_ROLE: 200 and a stream with one ERROR event.
	s := tm.subscribe(t, mediaJSON, []byte(mtSubscribeBody(`{"user":"root","name":"x","roles":["mysos"]}`)))
	ev := s.next(t, func(*scheduler.Event) bool { return true })
	if ev.Type != scheduler.Event_ERROR || ev.Error.Message != "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable" {
		t.Errorf("got %v", ev)
	}
	s.waitClosed(t)

	// Unknown JSON fields are ignored; mesos-go's nulls are accepted.
	s = tm.subscribeJSON(t, `{"type":"SUBSCRIBE","bogus_field":1,"subscribe":{"framework_info":{"user":"root","name":"x","roles":["mysos"],"capabilities":[{"type":"MULTI_ROLE"}],"failover_timeout":60,"offer_filters":null}}}`)
	fw := s.fwID

	for _, c := range []struct {
		name, sid, body string
		code            int
		text            string
	}{
		{"no stream id", "", mtCallBody(fw, "REVIVE", "", ""), 400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"},
		{"wrong stream id", "11111111-2222-3333-4444-555555555555", mtCallBody(fw, "REVIVE", "", ""), 400,
			"The stream ID '11111111-2222-3333-4444-555555555555' included in this request didn't match the stream ID currently associated with framework ID " + fw},
		{"empty accept", s.streamID, mtCallBody(fw, "ACCEPT", "accept", `{"offer_ids":[],"operations":[]}`), 202, ""},
		{"bad uuid", s.streamID, mtCallBody(fw, "ACKNOWLEDGE", "acknowledge", `{"agent_id":{"value":"x"},"task_id":{"value":"y"},"uuid":"AAAA"}`), 400,
			"Failed to validate scheduler::Call: Not a valid UUID"},
		{"kill without kill", s.streamID, mtCallBody(fw, "KILL", "", ""), 400, "Failed to validate scheduler::Call: Expecting 'kill' to be present"},
		{"unknown ack", s.streamID, mtCallBody(fw, "ACKNOWLEDGE", "acknowledge", `{"agent_id":{"value":"x"},"task_id":{"value":"y"},"uuid":"qiK0C062RPKwn7xZsl6zVQ=="}`), 202, ""},
		{"type UNKNOWN", s.streamID, mtCallBody(fw, "UNKNOWN", "", ""), 501, ""},
		{"request", s.streamID, mtCallBody(fw, "REQUEST", "request", `{"requests":[]}`), 202, ""},
	} {
		code, body := tm.postJSON(t, c.sid, c.body)
		if code != c.code || !strings.HasPrefix(body, c.text) {
			t.Errorf("%s: got %d %q, want %d %q", c.name, code, body, c.code, c.text)
		}
	}

	// Closing the stream disconnects the framework: 403 until it returns.
	s.resp.Body.Close()
	waitFor(t, "403 for the disconnected framework", func() bool {
		code, body := tm.postJSON(t, s.streamID, mtCallBody(fw, "REVIVE", "", ""))
		return code == 403 && body == "Framework is not subscribed"
	})
}

// Expectations from transcripts 02 and 04.
func TestMasterSubscribe(t *testing.T) {
	tm := mtNewTestMaster(t)
	fa := mtNewFakeAgent(t, tm.m)
	agentID := fa.register(t, mtDefaultAgentInfo())
	if !strings.HasPrefix(agentID, tm.m.ID()+"-S") {
		t.Fatalf("agent id %q", agentID)
	}

	for _, media := range []string{mediaJSON, mediaProtobuf} {
		var body []byte
		call := &scheduler.Call{}
		if err := json.Unmarshal([]byte(mtSubscribeBody(mtFwInfoPA)), call); err != nil {
			t.Fatal(err)
		}
		if media == mediaProtobuf {
			body, _ = call.Marshal()
		} else {
			body, _ = json.Marshal(call)
		}
		s := tm.subscribe(t, media, body)
		h := s.resp.Header
		if h.Get("Content-Type") != media || s.streamID == "" || len(s.streamID) > 128 || h.Get("Content-Length") != "" ||
			s.resp.ContentLength != -1 {
			t.Errorf("%s: headers %v", media, h)
		}
		ev := s.next(t, func(*scheduler.Event) bool { return true })
		if ev.Type != scheduler.Event_SUBSCRIBED {
			t.Fatalf("%s: first event %v", media, ev.Type)
		}
		mi := ev.Subscribed.MasterInfo
		if !strings.HasPrefix(ev.Subscribed.FrameworkID.Value, tm.m.ID()+"-") || ev.Subscribed.GetHeartbeatIntervalSeconds() != 1 ||
			mi.ID != tm.m.ID() || mi.IP != 16777343 || mi.GetAddress().GetIP() != "127.0.0.1" || mi.GetVersion() != "1.10.0" {
			t.Errorf("%s: SUBSCRIBED %v", media, ev.Subscribed)
		}
		ev = s.next(t, func(*scheduler.Event) bool { return true })
		if ev.Type != scheduler.Event_HEARTBEAT {
			t.Errorf("%s: second event %v, want HEARTBEAT", media, ev.Type)
		}
		ev = s.next(t, mtIsType(scheduler.Event_OFFERS))
		o := ev.Offers.Offers[0]
		if o.AgentID.Value != agentID || o.Hostname != "agent-1" || o.URL.GetAddress().Port != 5051 || o.AllocationInfo.GetRole() != "mysos" ||
			!strings.HasPrefix(o.ID.Value, tm.m.ID()+"-O") || o.FrameworkID.Value != ev.Offers.Offers[0].FrameworkID.Value {
			t.Errorf("%s: offer %v", media, o)
		}
		for _, r := range o.Resources {
			if r.AllocationInfo.GetRole() != "mysos" || r.Role != nil || len(r.Reservations) != 0 {
				t.Errorf("%s: offered resource %v", media, r)
			}
		}
		if c := mtResourceByName(o.Resources, "cpus"); c == nil || c.GetScalar().GetValue() != 2 {
			t.Errorf("%s: cpus %v", media, c)
		}
		// The heartbeat keeps coming.
		s.nextWithin(t, 3*time.Second, mtIsType(scheduler.Event_HEARTBEAT))
		// TEARDOWN so the next framework gets the agent.
		code, _ := tm.postJSON(t, s.streamID, mtCallBody(ev.Offers.Offers[0].FrameworkID.Value, "TEARDOWN", "", ""))
		if code != 202 {
			t.Fatalf("teardown %d", code)
		}
		s.waitClosed(t)
	}

	// Without RESERVATION_REFINEMENT: legacy "role":"*".
	s := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoLegacy))
	ev := s.next(t, mtIsType(scheduler.Event_OFFERS))
	for _, r := range ev.Offers.Offers[0].Resources {
		if r.GetRole() != "*" || r.Role == nil || r.AllocationInfo.GetRole() != "mysos" {
			t.Errorf("legacy offer resource %v", r)
		}
	}
}

// Expectations from transcript 07: failover while connected, TEARDOWN.
func TestMasterFailoverAndTeardown(t *testing.T) {
	tm := mtNewTestMaster(t)
	fa := mtNewFakeAgent(t, tm.m)
	fa.register(t, mtDefaultAgentInfo())
	s1 := tm.subscribeJSON(t, mtSubscribeBody(mtFwInfoPA))
	o1 := s1.next(t, mtIsType(scheduler.Event_OFFERS)).Offers.Offers[0]
	fw := s1.fwID

	resub := `{"type":"SUBSCRIBE","framework_id":{"value":"` + fw + `"},"subscribe":{"framework_info":` +
		strings.Replace(mtFwInfoPA, `"checkpoint"`, `"id":{"value":"`+fw+`"},"checkpoint"`, 1) + `}}`
	s2 := tm.subscribeJSON(t, resub)
	if s2.fwID != fw || s2.streamID == s1.streamID {
		t.Fatalf("re-subscribe: %s %s", s2.fwID, s2.streamID)
	}
	ev := s1.next(t, mtIsType(scheduler.Event_ERROR))
	if ev.Error.Message != "Framework failed over" {
		t.Errorf("old stream got %q", ev.Error.Message)
	}
	s1.waitClosed(t)
	// The old offer is gone; its resources come again, no RESCIND.
	o2 := s2.next(t, func(e *scheduler.Event) bool {
		if e.Type == scheduler.Event_RESCIND {
			t.Errorf("unexpected RESCIND")
		}
		return e.Type == scheduler.Event_OFFERS
	}).Offers.Offers[0]
	if o2.ID.Value == o1.ID.Value {
		t.Errorf("offer not renewed")
	}
	// A call with the old stream id is refused.
	if code, _ := tm.postJSON(t, s1.streamID, mtCallBody(fw, "REVIVE", "", "")); code != 400 {
		t.Errorf("old stream id: %d", code)
	}
	// TEARDOWN: 202, the stream closes without an event, agents shut the
	// framework down, the id is dead.
	if code, _ := tm.postJSON(t, s2.streamID, mtCallBody(fw, "TEARDOWN", "", "")); code != 202 {
		t.Fatalf("teardown %d", code)
	}
	s2.waitClosed(t)
	fa.expect(t, func(m any) bool {
		x, ok := m.(msgShutdownFramework)
		return ok && x.FrameworkID.Value == fw
	})
	if code, body := tm.postJSON(t, s2.streamID, mtCallBody(fw, "REVIVE", "", "")); code != 400 || body != "Framework cannot be found" {
		t.Errorf("after teardown: %d %q", code, body)
	}
	s3 := tm.subscribe(t, mediaJSON, []byte(resub))
	ev = s3.next(t, func(*scheduler.Event) bool { return true })
	if ev.Type != scheduler.Event_ERROR || ev.Error.Message != "Framework has been removed" {
		t.Errorf("resubscribe after teardown: %v", ev)
	}
	s3.waitClosed(t)
}

// A framework with failover_timeout 0 is removed when its stream closes.
func TestMasterFailoverTimeout(t *testing.T) {
	tm := mtNewTestMaster(t)
	s := tm.subscribeJSON(t, mtSubscribeBody(`{"user":"root","name":"x","failover_timeout":0.2}`))
	s.resp.Body.Close()
	waitFor(t, "the framework to be removed", func() bool {
		code, body := tm.postJSON(t, s.streamID, mtCallBody(s.fwID, "REVIVE", "", ""))
		return code == 400 && body == "Framework cannot be found"
	})
	s2 := tm.subscribe(t, mediaJSON, []byte(mtSubscribeBody(`{"user":"root","name":"x","id":{"value":"`+s.fwID+`"}}`)))
	if ev := s2.next(t, func(*scheduler.Event) bool { return true }); ev.Type != scheduler.Event_ERROR || ev.Error.Message != "Framework has been removed" {
		t.Errorf("got %v", ev)
	}
}

func TestMasterVersionAndState(t *testing.T) {
	tm := mtNewTestMaster(t)
	resp, err := http.Get(tm.srv.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v["version"] != "1.10.0" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("version %v", v)
	}
	for _, p := range []string{"/state", "/master/state", "/health"} {
		resp, err := http.Get(tm.srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	resp, _ = http.Get(tm.srv.URL + "/nope")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path %d", resp.StatusCode)
	}
	_ = proto.String
	_ = mesos.TASK_RUNNING
}

// TestResourcesSummaryMergesReservedRanges: the state endpoints show an
// agent's total ports as one range however they are reserved, as Mesos does.
func TestResourcesSummaryMergesReservedRanges(t *testing.T) {
	reserved := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
		Ranges:       &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 31000}}},
		Reservations: []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: aptr("mysos")}}}
	free := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
		Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31500, End: 32000}, {Begin: 31001, End: 31100}}}}
	cpus := mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 1.5}}
	got := resourcesSummary([]mesos.Resource{free, reserved, cpus, cpus})
	if got["ports"] != "[31000-31100, 31500-32000]" || got["cpus"] != 3.0 {
		t.Fatalf("summary %v; want ports [31000-31100, 31500-32000] and cpus 3", got)
	}
}
