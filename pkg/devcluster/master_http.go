package devcluster

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/gogo/protobuf/protoc-gen-gogo/descriptor"
	"github.com/google/uuid"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/roles"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const (
	schedulerPath  = "/api/v1/scheduler"
	streamIDHeader = "Mesos-Stream-Id"
)

// ServeHTTP serves the scheduler API and the master's read-only endpoints.
func (m *Master) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case schedulerPath, schedulerPath + "/":
		m.serveScheduler(w, r)
	case "/version":
		m.serveVersion(w, r)
	case "/state", "/master/state", "/state.json", "/master/state.json":
		m.serveState(w, r)
	case "/health", "/master/health":
		w.WriteHeader(http.StatusOK)
	default:
		if p := r.URL.Path; p == "/redirect" || p == "/master/redirect" ||
			strings.HasPrefix(p, "/redirect/") || strings.HasPrefix(p, "/master/redirect/") {
			info := m.info
			leaderRedirect(w, r, &info)
			return
		}
		http.NotFound(w, r)
	}
}

// serveScheduler implements POST /api/v1/scheduler, checking in the order
// real Mesos does.
func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	principal, ok := m.authenticate(r)
	if !ok {
		// libprocess' basic authenticator answers before the endpoint runs.
		w.Header().Set("WWW-Authenticate", `Basic realm="mesos"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if m.recoveringNow() {
		writeError(w, http.StatusServiceUnavailable, "Master has not finished recovery")
		return
	}
	reqCodec, body, ok := readCall(w, r)
	if !ok {
		return
	}
	call, typePresent, msg := decodeCall(reqCodec, body)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	if msg := validateCall(call, typePresent); msg != "" {
		writeError(w, http.StatusBadRequest, "Failed to validate scheduler::Call: "+msg)
		return
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		respCodec, ok := responseCodec(r)
		if !ok {
			writeError(w, http.StatusNotAcceptable,
				fmt.Sprintf("Expecting 'Accept' to allow '%s' or '%s'", mediaProtobuf, mediaJSON))
			return
		}
		if _, ok := r.Header[streamIDHeader]; ok {
			writeError(w, http.StatusBadRequest, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
			return
		}
		if p := call.Subscribe.GetFrameworkInfo().GetPrincipal(); principal != "" && p != "" && p != principal {
			writeError(w, http.StatusForbidden, fmt.Sprintf(
				"Authenticated principal '%s' does not match principal '%s' set in `FrameworkInfo`", principal, p))
			return
		}
		m.subscribe(w, r, call, respCodec)
		return
	}
	code, msg := m.handleCall(r, call)
	if code == http.StatusAccepted || code == http.StatusOK {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(code)
		return
	}
	writeError(w, code, msg)
}

// authenticate checks a request's HTTP basic credentials when the master
// has any, returning the principal ("" when it authenticates no one).
func (m *Master) authenticate(r *http.Request) (string, bool) {
	if len(m.cfg.Credentials) == 0 {
		return "", true
	}
	user, pass, ok := r.BasicAuth()
	want, known := m.cfg.Credentials[user]
	if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		return "", false
	}
	return user, true
}

// handleCall runs a non-SUBSCRIBE call and returns the status to answer.
func (m *Master) handleCall(r *http.Request, call *scheduler.Call) (int, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return http.StatusServiceUnavailable, "Master is shutting down"
	}
	fwID := call.FrameworkID.GetValue()
	fw := m.frameworks[fwID]
	if fw == nil {
		return http.StatusBadRequest, "Framework cannot be found"
	}
	if fw.stream == nil {
		return http.StatusForbidden, "Framework is not subscribed"
	}
	sid, ok := r.Header[streamIDHeader]
	if !ok || len(sid) == 0 {
		return http.StatusBadRequest, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
	}
	if sid[0] != fw.stream.id {
		return http.StatusBadRequest, fmt.Sprintf(
			"The stream ID '%s' included in this request didn't match the stream ID currently associated with framework ID %s",
			sid[0], fwID)
	}
	switch call.Type {
	case scheduler.Call_TEARDOWN:
		m.log.Info("framework teardown", "framework", fw.id)
		m.removeFramework(fw)
	case scheduler.Call_ACCEPT:
		m.accept(fw, call.Accept)
	case scheduler.Call_DECLINE:
		m.decline(fw, call.Decline.OfferIDs, call.Decline.Filters)
	case scheduler.Call_ACCEPT_INVERSE_OFFERS, scheduler.Call_DECLINE_INVERSE_OFFERS, scheduler.Call_REQUEST:
		// No maintenance, no requests: accepted and ignored.
	case scheduler.Call_REVIVE:
		var rs []string
		if call.Revive != nil {
			rs = call.Revive.Roles
		}
		m.revive(fw, rs)
	case scheduler.Call_SUPPRESS:
		var rs []string
		if call.Suppress != nil {
			rs = call.Suppress.Roles
		}
		m.suppress(fw, rs)
	case scheduler.Call_KILL:
		m.kill(fw, call.Kill)
	case scheduler.Call_SHUTDOWN:
		if a := m.agents[call.Shutdown.AgentID.Value]; a != nil {
			a.link.sendToAgent(msgShutdownExecutor{FrameworkID: mesos.FrameworkID{Value: fw.id}, ExecutorID: call.Shutdown.ExecutorID})
		}
	case scheduler.Call_ACKNOWLEDGE:
		m.acknowledge(fw, call.Acknowledge)
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		// Operation feedback is not offered; nothing to acknowledge.
	case scheduler.Call_RECONCILE:
		m.reconcile(fw, call.Reconcile.Tasks)
	case scheduler.Call_RECONCILE_OPERATIONS:
		m.reconcileOperations(fw, call.ReconcileOperations)
	case scheduler.Call_MESSAGE:
		if a := m.agents[call.Message.AgentID.Value]; a != nil {
			a.link.sendToAgent(msgFrameworkToExecutor{FrameworkID: mesos.FrameworkID{Value: fw.id},
				ExecutorID: call.Message.ExecutorID, Data: call.Message.Data})
		}
	case scheduler.Call_UPDATE_FRAMEWORK:
		return m.updateFramework(fw, call)
	default:
		return http.StatusNotImplemented, "Received an unexpected " + call.Type.String() + " call"
	}
	return http.StatusAccepted, ""
}

// updateFramework applies UPDATE_FRAMEWORK. Caller holds m.mu.
func (m *Master) updateFramework(fw *mframework, call *scheduler.Call) (int, string) {
	info := call.UpdateFramework.FrameworkInfo
	if info.GetID().GetValue() != fw.id {
		return http.StatusBadRequest, "'framework_info.id' differs from 'framework_id'"
	}
	if info.GetPrincipal() != fw.info.GetPrincipal() {
		return http.StatusBadRequest, "Changing framework's principal is not allowed"
	}
	if info.User != fw.info.User {
		return http.StatusBadRequest, "Updating 'FrameworkInfo.user' is unsupported"
	}
	if info.GetCheckpoint() != fw.info.GetCheckpoint() {
		return http.StatusBadRequest, "Updating 'FrameworkInfo.checkpoint' is unsupported"
	}
	if msg := validateFrameworkInfo(&info, call.UpdateFramework.SuppressedRoles); msg != "" {
		return http.StatusBadRequest, msg
	}
	fw.setInfo(info)
	fw.suppressed = map[string]bool{}
	for _, r := range call.UpdateFramework.SuppressedRoles {
		fw.suppressed[r] = true
	}
	keep := map[string]bool{}
	for _, r := range fw.roles {
		keep[r] = true
	}
	for _, o := range m.offers {
		if o.fw == fw && !keep[o.role] {
			m.removeOffer(o, true)
		}
	}
	return http.StatusOK, ""
}

// ---------------------------------------------------------------------------
// SUBSCRIBE and event streams.

// eventStream is one subscription: events are queued without blocking and
// written by the goroutine serving the SUBSCRIBE response.
type eventStream struct {
	id     string
	fwID   string
	mu     sync.Mutex
	queue  []*scheduler.Event
	ending bool // close once the queue is drained
	abort  bool // close at once
	notify chan struct{}
}

func newEventStream(fwID string) *eventStream {
	return &eventStream{id: uuid.NewString(), fwID: fwID, notify: make(chan struct{}, 1)}
}

func (s *eventStream) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *eventStream) push(ev *scheduler.Event) {
	s.mu.Lock()
	if !s.ending && !s.abort {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	s.wake()
}

// closeAfter queues a last event and ends the stream after it.
func (s *eventStream) closeAfter(ev *scheduler.Event) {
	s.mu.Lock()
	if !s.ending && !s.abort {
		s.queue = append(s.queue, ev)
		s.ending = true
	}
	s.mu.Unlock()
	s.wake()
}

// closeNow ends the stream without sending what is queued.
func (s *eventStream) closeNow() {
	s.mu.Lock()
	s.abort = true
	s.queue = nil
	s.mu.Unlock()
	s.wake()
}

// serve writes queued events and heartbeats until the stream ends or the
// client goes away.
func (s *eventStream) serve(r *http.Request, st *stream, heartbeat time.Duration) {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		s.mu.Lock()
		batch, ending, abort := s.queue, s.ending, s.abort
		s.queue = nil
		s.mu.Unlock()
		if abort {
			return
		}
		for _, ev := range batch {
			if err := st.send(ev); err != nil {
				return
			}
		}
		if ending && len(batch) == 0 {
			return
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.notify:
		case <-r.Context().Done():
			return
		case <-tick.C:
			s.push(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
		}
	}
}

// validateFrameworkInfo returns the error a SUBSCRIBE gets as an ERROR event.
func validateFrameworkInfo(info *mesos.FrameworkInfo, suppressed []string) string {
	multi := false
	for _, c := range info.Capabilities {
		if c.Type == mesos.FrameworkInfo_Capability_MULTI_ROLE {
			multi = true
		}
	}
	var rs []string
	if multi {
		if info.Role != nil {
			return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
		}
		rs = info.Roles
		seen := map[string]bool{}
		for _, r := range rs {
			if seen[r] {
				return fmt.Sprintf("'FrameworkInfo.roles' contains duplicate items: '%s'", r)
			}
			seen[r] = true
		}
	} else {
		if len(info.Roles) > 0 {
			return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
		}
		rs = []string{info.GetRole()}
	}
	for _, r := range rs {
		if err := roles.Validate(r); err != nil {
			return fmt.Sprintf("'FrameworkInfo.roles' is not a valid role: %v", err)
		}
	}
	for _, s := range suppressed {
		found := false
		for _, r := range rs {
			found = found || r == s
		}
		if !found {
			return fmt.Sprintf("Suppressed role '%s' is not contained in the list of roles", s)
		}
	}
	return ""
}

func (m *Master) subscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call, c codec) {
	sub := call.Subscribe
	info := *proto.Clone(sub.FrameworkInfo).(*mesos.FrameworkInfo)
	fail := func(msg string) {
		st, err := startStream(w, c, map[string]string{streamIDHeader: uuid.NewString()})
		if err != nil {
			return
		}
		_ = st.send(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: msg}})
	}
	if msg := validateFrameworkInfo(&info, sub.SuppressedRoles); msg != "" {
		fail(msg)
		return
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "Master is shutting down")
		return
	}
	requested := info.GetID().GetValue()
	if requested != "" && m.removed[requested] != nil {
		m.mu.Unlock()
		fail("Framework has been removed")
		return
	}
	var fw *mframework
	if requested == "" {
		fw = m.newFramework(fmt.Sprintf("%s-%04d", m.id, m.nextFW), info)
		m.nextFW++
		m.log.Info("framework subscribed", "framework", fw.id, "name", info.Name)
	} else if fw = m.frameworks[requested]; fw != nil {
		if fw.stream != nil {
			fw.stream.closeAfter(&scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: "Framework failed over"}})
			fw.stream = nil
		}
		if fw.failover != nil {
			fw.failover.Stop()
			fw.failover = nil
		}
		m.withdrawOffers(fw)
		principal := fw.info.Principal
		fw.setInfo(info)
		if principal != nil {
			fw.info.Principal = principal
		}
		fw.recovered = false
		fw.reregistered = time.Now()
		m.log.Info("framework re-subscribed", "framework", fw.id)
	} else {
		// A framework this master never saw (it restarted): recover it.
		fw = m.newFramework(requested, info)
		fw.reregistered = time.Now()
		m.log.Info("framework recovered by subscription", "framework", fw.id)
	}
	fw.suppressed = map[string]bool{}
	for _, s := range sub.SuppressedRoles {
		fw.suppressed[s] = true
	}
	es := newEventStream(fw.id)
	fw.stream = es
	hb := m.timeouts.Heartbeat.Seconds()
	mi := m.info
	es.push(&scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID:              &mesos.FrameworkID{Value: fw.id},
		HeartbeatIntervalSeconds: &hb,
		MasterInfo:               &mi,
	}})
	es.push(&scheduler.Event{Type: scheduler.Event_HEARTBEAT})
	heartbeat := m.timeouts.Heartbeat
	m.mu.Unlock()

	st, err := startStream(w, c, map[string]string{streamIDHeader: es.id})
	if err != nil {
		m.log.Error("cannot stream", "err", err)
		m.streamEnded(es)
		return
	}
	es.serve(r, st, heartbeat)
	st.close()
	m.streamEnded(es)
}

// ---------------------------------------------------------------------------
// Decoding and validation.

// decodeCall parses a request body. typePresent says whether the call named
// a type this master knows: like Mesos' JSON parser, an unknown enum name
// leaves the field unset.
func decodeCall(c codec, body []byte) (*scheduler.Call, bool, string) {
	call := &scheduler.Call{}
	if c.mediaType == mediaProtobuf {
		if err := call.Unmarshal(body); err != nil {
			return nil, false, "Failed to parse body into Call protobuf"
		}
		return call, protoHasField(body, 2), ""
	}
	var generic any
	if err := json.Unmarshal(body, &generic); err != nil {
		return nil, false, "Failed to parse body into JSON: " + jsonSyntaxError(body, err)
	}
	obj, ok := generic.(map[string]any)
	if !ok {
		return nil, false, "Failed to convert JSON into Call protobuf: Expecting a JSON object"
	}
	typePresent := false
	if t, ok := obj["type"].(string); ok {
		if _, known := scheduler.Call_Type_value[t]; known {
			typePresent = true
		}
	}
	if !typePresent {
		delete(obj, "type")
	}
	if missing := missingRequired(obj, "mesos.scheduler.Call", ""); len(missing) > 0 {
		return nil, false, "Failed to convert JSON into Call protobuf: Missing required fields: " + strings.Join(missing, ", ")
	}
	clean, err := json.Marshal(obj)
	if err != nil {
		return nil, false, "Failed to convert JSON into Call protobuf: " + err.Error()
	}
	if err := json.Unmarshal(clean, call); err != nil {
		return nil, false, "Failed to convert JSON into Call protobuf: " + err.Error()
	}
	return call, typePresent, ""
}

// jsonSyntaxError words a parse error like Mesos' JSON parser: the line and
// the text from the error on.
func jsonSyntaxError(body []byte, err error) string {
	off := len(body)
	if se, ok := err.(*json.SyntaxError); ok && se.Offset > 0 && int(se.Offset) <= len(body) {
		off = int(se.Offset) - 1
	}
	line := 1 + bytes.Count(body[:off], []byte("\n"))
	near := body[off:]
	if i := bytes.IndexByte(near, '\n'); i >= 0 {
		near = near[:i]
	}
	return fmt.Sprintf("syntax error at line %d near: %s", line, near)
}

// protoHasField reports whether a serialized message has a top-level field.
func protoHasField(b []byte, field uint64) bool {
	for len(b) > 0 {
		key, n := proto.DecodeVarint(b)
		if n == 0 {
			return false
		}
		b = b[n:]
		if key>>3 == field {
			return true
		}
		switch key & 7 {
		case 0:
			_, n = proto.DecodeVarint(b)
			if n == 0 {
				return false
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return false
			}
			b = b[8:]
		case 2:
			l, n := proto.DecodeVarint(b)
			if n == 0 || uint64(len(b)-n) < l {
				return false
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return false
			}
			b = b[4:]
		default:
			return false
		}
	}
	return false
}

// validateCall applies Mesos' scheduler call validation.
func validateCall(call *scheduler.Call, typePresent bool) string {
	if !typePresent {
		return "Expecting 'type' to be present"
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		if call.Subscribe == nil {
			return "Expecting 'subscribe' to be present"
		}
		if call.Subscribe.FrameworkInfo == nil {
			return "Expecting 'subscribe.framework_info' to be present"
		}
		if call.FrameworkID != nil && call.FrameworkID.Value != call.Subscribe.FrameworkInfo.GetID().GetValue() {
			return "'framework_id' differs from 'subscribe.framework_info.id'"
		}
		return ""
	}
	if call.FrameworkID == nil {
		return "Expecting 'framework_id' to be present"
	}
	need := func(present bool, name string) string {
		if !present {
			return "Expecting '" + name + "' to be present"
		}
		return ""
	}
	validUUID := func(b []byte) string {
		if _, err := uuid.FromBytes(b); err != nil || len(b) != 16 {
			return "Not a valid UUID"
		}
		return ""
	}
	switch call.Type {
	case scheduler.Call_ACCEPT:
		return need(call.Accept != nil, "accept")
	case scheduler.Call_DECLINE:
		return need(call.Decline != nil, "decline")
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		return need(call.AcceptInverseOffers != nil, "accept_inverse_offers")
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		return need(call.DeclineInverseOffers != nil, "decline_inverse_offers")
	case scheduler.Call_KILL:
		return need(call.Kill != nil, "kill")
	case scheduler.Call_SHUTDOWN:
		return need(call.Shutdown != nil, "shutdown")
	case scheduler.Call_ACKNOWLEDGE:
		if call.Acknowledge == nil {
			return need(false, "acknowledge")
		}
		return validUUID(call.Acknowledge.UUID)
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		if call.AcknowledgeOperationStatus == nil {
			return need(false, "acknowledge_operation_status")
		}
		return validUUID(call.AcknowledgeOperationStatus.UUID)
	case scheduler.Call_RECONCILE:
		return need(call.Reconcile != nil, "reconcile")
	case scheduler.Call_RECONCILE_OPERATIONS:
		return need(call.ReconcileOperations != nil, "reconcile_operations")
	case scheduler.Call_MESSAGE:
		return need(call.Message != nil, "message")
	case scheduler.Call_REQUEST:
		return need(call.Request != nil, "request")
	case scheduler.Call_UPDATE_FRAMEWORK:
		return need(call.UpdateFramework != nil, "update_framework")
	}
	return ""
}

// Proto2 required fields, checked on JSON bodies against the descriptors
// compiled into mesos-go (a JSON decode into the generated types does not
// notice a missing non-pointer field).
var (
	descOnce sync.Once
	descs    map[string]*descriptor.DescriptorProto
)

func loadDescriptors() {
	descs = map[string]*descriptor.DescriptorProto{}
	st := mesos.TaskState(0)
	ct := scheduler.Call_Type(0)
	for _, gz := range [][]byte{firstBytes(st.EnumDescriptor()), firstBytes(ct.EnumDescriptor())} {
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			continue
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			continue
		}
		var fd descriptor.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			continue
		}
		var walk func(prefix string, ms []*descriptor.DescriptorProto)
		walk = func(prefix string, ms []*descriptor.DescriptorProto) {
			for _, md := range ms {
				name := prefix + "." + md.GetName()
				descs[name] = md
				walk(name, md.GetNestedType())
			}
		}
		walk("."+fd.GetPackage(), fd.GetMessageType())
	}
}

func firstBytes(b []byte, _ []int) []byte { return b }

// missingRequired lists the required fields missing from a JSON object of
// message type typeName (dotted, without the leading dot), recursively.
func missingRequired(obj map[string]any, typeName, path string) []string {
	descOnce.Do(loadDescriptors)
	md := descs["."+typeName]
	if md == nil {
		return nil
	}
	var missing []string
	for _, f := range md.GetField() {
		name := f.GetName()
		v, ok := obj[name]
		if !ok || v == nil {
			if f.GetLabel() == descriptor.FieldDescriptorProto_LABEL_REQUIRED {
				missing = append(missing, path+name)
			}
			continue
		}
		if f.GetType() != descriptor.FieldDescriptorProto_TYPE_MESSAGE {
			continue
		}
		sub := strings.TrimPrefix(f.GetTypeName(), ".")
		switch x := v.(type) {
		case map[string]any:
			if f.GetLabel() == descriptor.FieldDescriptorProto_LABEL_REPEATED {
				continue // a map field
			}
			missing = append(missing, missingRequired(x, sub, path+name+".")...)
		case []any:
			for i, e := range x {
				if eo, ok := e.(map[string]any); ok {
					missing = append(missing, missingRequired(eo, sub, fmt.Sprintf("%s%s[%d].", path, name, i))...)
				}
			}
		}
	}
	return missing
}
