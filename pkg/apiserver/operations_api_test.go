package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/spec"
)

const (
	switchoverPath = clustersPath + "/shop/switchover"
	ackPath        = clustersPath + "/shop/failover/ack"
)

// setStatus writes shop's status as the reconciler would.
func (a *apiTest) setStatus(change func(*spec.ClusterStatus)) spec.MySQLCluster {
	a.t.Helper()
	c, err := a.store.Get(context.Background(), "default", "shop")
	if err != nil {
		a.t.Fatal(err)
	}
	out, err := a.store.UpdateStatus(context.Background(), "default", "shop", c.Metadata.UID, func(st *spec.ClusterStatus) error {
		change(st)
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return *out
}

func makeReady(st *spec.ClusterStatus) {
	st.CurrentPrimary = "shop-0"
	st.Instances = []spec.InstanceStatus{{Name: "shop-0"}, {Name: "shop-1"}, {Name: "shop-2"}}
	st.SetCondition(spec.Condition{Type: spec.ConditionReady, Status: spec.ConditionTrue}, time.Now())
}

func (a *apiTest) expectStatus(method, path, contentType, body string, code int, reason string, says ...string) spec.Status {
	a.t.Helper()
	got, raw := a.do(method, path, contentType, body)
	if got != code {
		a.t.Fatalf("%s %s %s: %d %s; want %d", method, path, body, got, raw, code)
	}
	st := decodeStatus(a.t, raw)
	if st.Reason != reason {
		a.t.Fatalf("%s %s: reason %q (%s); want %q", method, path, st.Reason, st.Message, reason)
	}
	for _, s := range says {
		if !strings.Contains(st.Message, s) {
			a.t.Errorf("%s %s: %q does not say %q", method, path, st.Message, s)
		}
	}
	return st
}

// TestSwitchover: the request is refused until the cluster can take it,
// then recorded as status.operation and answered 202; a second one is
// refused while the first runs.
func TestSwitchover(t *testing.T) {
	a := newAPI(t)
	a.expectStatus("POST", switchoverPath, "", "", http.StatusNotFound, spec.ReasonNotFound)
	a.create(validYAML)
	a.expectStatus("POST", switchoverPath, "", "", http.StatusConflict, spec.ReasonConflict, "no primary")
	a.setStatus(makeReady)

	st := a.expectStatus("POST", switchoverPath, "application/json", `{"to": "shop-7"}`, http.StatusBadRequest, spec.ReasonInvalid, "shop-7")
	if !hasCause(st, "to") {
		t.Fatalf("no cause names to: %+v", st.Details)
	}
	a.expectStatus("POST", switchoverPath, "application/json", `{"to": "shop-0"}`, http.StatusBadRequest, spec.ReasonInvalid, "already the primary")
	if st := a.expectStatus("POST", switchoverPath, "application/json", `{"target": "shop-1"}`, http.StatusBadRequest, spec.ReasonInvalid); !hasCause(st, "target") {
		t.Fatalf("no cause names the unknown field: %s", st.Message)
	}
	a.expectStatus("POST", switchoverPath, "text/plain", `{"to": "shop-1"}`, http.StatusUnsupportedMediaType, spec.ReasonUnsupportedMediaType)
	a.expectStatus("POST", switchoverPath, "application/json", `{"to": "`+strings.Repeat("x", apiserver.MaxBodyBytes)+`"}`,
		http.StatusRequestEntityTooLarge, spec.ReasonTooLarge)
	if code, _ := a.do("POST", switchoverPath, "application/json", `{"to": "shop-1"}`, ""); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if _, c := a.get("shop"); c.Status.Operation != nil {
		t.Fatalf("a refused request recorded %+v", c.Status.Operation)
	}

	before := time.Now().UTC()
	code, body := a.do("POST", switchoverPath, "application/json", `{"to": "shop-1"}`)
	var op spec.Operation
	if err := json.Unmarshal([]byte(body), &op); code != http.StatusAccepted || err != nil {
		t.Fatalf("switchover: %d %s", code, body)
	}
	if op.Kind != spec.OperationSwitchover || op.From != "shop-0" || op.To != "shop-1" || op.Step != spec.StepRequested ||
		!strings.HasPrefix(op.ID, "switchover-"+before.Format("20060102T")) || op.StartedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("operation %+v", op)
	}
	if _, c := a.get("shop"); c.Status.Operation == nil || *c.Status.Operation != op {
		t.Fatalf("stored operation %+v; want %+v", c.Status.Operation, op)
	}
	a.expectStatus("POST", switchoverPath, "", "", http.StatusConflict, spec.ReasonConflict, op.ID, "step Requested", "mysosctl events shop")

	// Once the reconciler is done, an empty body asks for any replica.
	a.setStatus(func(st *spec.ClusterStatus) { st.Operation, st.CurrentPrimary = nil, "shop-1" })
	code, body = a.do("POST", switchoverPath, "", "")
	var anyReplica spec.Operation
	if err := json.Unmarshal([]byte(body), &anyReplica); code != http.StatusAccepted || err != nil || anyReplica.To != "" || anyReplica.From != "shop-1" {
		t.Fatalf("switchover without a target: %d %s", code, body)
	}
}

func TestSwitchoverOfDeletedCluster(t *testing.T) {
	a := newAPI(t)
	c := a.create(validYAML)
	if err := a.store.SetFinalizers(context.Background(), "default", "shop", c.Metadata.UID, []string{"mysos.io/tasks"}); err != nil {
		t.Fatal(err)
	}
	a.setStatus(makeReady)
	if code, _ := a.do("DELETE", clustersPath+"/shop", "", ""); code != http.StatusAccepted {
		t.Fatalf("delete: %d", code)
	}
	a.expectStatus("POST", switchoverPath, "", "", http.StatusConflict, spec.ReasonConflict, "being deleted")
}

func TestAckFailover(t *testing.T) {
	a := newAPI(t)
	a.create(validYAML)
	a.expectStatus("POST", ackPath, "", "", http.StatusConflict, spec.ReasonConflict, "no automatic failover")
	at := time.Now().UTC().Truncate(time.Second)
	a.setStatus(func(st *spec.ClusterStatus) {
		st.LastFailover = &spec.FailoverRecord{ID: "failover-1", From: "shop-0", To: "shop-2", At: at}
	})
	if code, _ := a.do("POST", ackPath, "", "", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %d", code)
	}
	code, body := a.do("POST", ackPath, "", "")
	var rec spec.FailoverRecord
	if err := json.Unmarshal([]byte(body), &rec); code != http.StatusOK || err != nil || !rec.Acknowledged || rec.ID != "failover-1" || !rec.At.Equal(at) {
		t.Fatalf("ack: %d %s", code, body)
	}
	if _, c := a.get("shop"); !c.Status.LastFailover.Acknowledged {
		t.Fatal("the acknowledgement was not stored")
	}
	if code, _ := a.do("POST", ackPath, "", ""); code != http.StatusOK {
		t.Fatalf("a second ack: %d; want 200, nothing to change", code)
	}
	a.expectStatus("POST", clustersPath+"/absent/failover/ack", "", "", http.StatusNotFound, spec.ReasonNotFound)
}

func TestEvents(t *testing.T) {
	a := newAPI(t)
	a.create(validYAML)
	a.create(strings.Replace(validYAML, "name: shop", "name: shop2", 1))
	decodeList := func(path string) []spec.Event {
		t.Helper()
		code, body := a.do("GET", path, "", "")
		var list spec.EventList
		if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil || list.Kind != spec.EventListKind ||
			list.APIVersion != spec.APIVersion || !strings.Contains(body, `"items": [`) {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		return list.Items
	}
	if got := decodeList(clustersPath + "/shop/events"); len(got) != 0 {
		t.Fatalf("events before any: %v", got)
	}
	t0 := time.Now().UTC().Add(-time.Minute)
	for i, ev := range []spec.Event{
		{Namespace: "default", Cluster: "shop", Reason: "SwitchoverRequested"},
		{Namespace: "default", Cluster: "shop2", Reason: "Other"},
		{Namespace: "prod", Cluster: "db", Reason: "Elsewhere"},
		{Namespace: "default", Cluster: "shop", Reason: "SwitchoverCompleted"},
	} {
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		if err := a.store.RecordEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string][]string{
		clustersPath + "/shop/events":       {"SwitchoverRequested", "SwitchoverCompleted"},
		"/api/v1/namespaces/default/events": {"SwitchoverRequested", "Other", "SwitchoverCompleted"},
		"/api/v1/events":                    {"SwitchoverRequested", "Other", "Elsewhere", "SwitchoverCompleted"},
	} {
		got := decodeList(path)
		var reasons []string
		for _, ev := range got {
			reasons = append(reasons, ev.Reason)
		}
		if strings.Join(reasons, ",") != strings.Join(want, ",") {
			t.Errorf("GET %s: %v; want %v", path, reasons, want)
		}
		if code, _ := a.do("GET", path, "", "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d", path, code)
		}
	}
	a.expectStatus("GET", clustersPath+"/absent/events", "", "", http.StatusNotFound, spec.ReasonNotFound)
	a.expectStatus("GET", "/api/v1/namespaces/Bad_NS/events", "", "", http.StatusBadRequest, spec.ReasonBadRequest)
}

// TestNewRoutesNeedToken: every new route answers 401 without a token,
// before looking at anything else.
func TestNewRoutesNeedToken(t *testing.T) {
	a := newAPI(t)
	for _, route := range []struct{ method, path string }{
		{"POST", switchoverPath}, {"POST", ackPath},
		{"GET", clustersPath + "/shop/events"}, {"GET", "/api/v1/namespaces/default/events"}, {"GET", "/api/v1/events"},
	} {
		code, body := a.do(route.method, route.path, "", "", "")
		if code != http.StatusUnauthorized || decodeStatus(t, body).Reason != spec.ReasonUnauthorized {
			t.Errorf("%s %s without a token: %d %s", route.method, route.path, code, body)
		}
	}
}
