package apiserver

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

func readyStatus() spec.ClusterStatus {
	return spec.ClusterStatus{
		CurrentPrimary: "shop-0",
		Instances:      []spec.InstanceStatus{{Name: "shop-0"}, {Name: "shop-1"}, {Name: "shop-2"}},
		Conditions:     []spec.Condition{{Type: spec.ConditionReady, Status: spec.ConditionTrue}},
	}
}

// TestCheckSwitchover covers every rule of starting a switchover: what
// refuses it, with which code, and what the answer says.
func TestCheckSwitchover(t *testing.T) {
	meta := spec.ObjectMeta{Name: "shop", Namespace: "default"}
	deleting := meta
	deleting.DeletionTimestamp = &time.Time{}
	elsewhere := meta
	elsewhere.Namespace = "prod"
	with := func(change func(*spec.ClusterStatus)) spec.ClusterStatus {
		st := readyStatus()
		change(&st)
		return st
	}
	busy := with(func(st *spec.ClusterStatus) {
		st.Operation = &spec.Operation{ID: "failover-20261126T101500123Z", Kind: spec.OperationFailover, Step: spec.StepFencing}
	})
	cases := []struct {
		name  string
		meta  spec.ObjectMeta
		st    spec.ClusterStatus
		to    string
		code  int
		field string
		says  []string
	}{
		{"ready, any target", meta, readyStatus(), "", 0, "", nil},
		{"ready, a replica", meta, readyStatus(), "shop-2", 0, "", nil},
		{"being deleted", deleting, readyStatus(), "", http.StatusConflict, "", []string{"being deleted"}},
		{"operation in progress", meta, busy, "shop-1", http.StatusConflict, "",
			[]string{"Failover", "failover-20261126T101500123Z", "step Fencing", "mysosctl events shop"}},
		{"operation in progress, another namespace", elsewhere, busy, "", http.StatusConflict, "", []string{"mysosctl events shop -n prod"}},
		{"no primary", meta, with(func(st *spec.ClusterStatus) { st.CurrentPrimary = "" }), "", http.StatusConflict, "", []string{"no primary"}},
		{"not ready", meta, with(func(st *spec.ClusterStatus) {
			st.Conditions[0].Status, st.Conditions[0].Message = spec.ConditionFalse, "1 of 3 instances not replicating"
		}), "", http.StatusConflict, "", []string{"Ready=False", `"1 of 3 instances not replicating"`}},
		{"no ready condition", meta, with(func(st *spec.ClusterStatus) { st.Conditions = nil }), "", http.StatusConflict, "", []string{"not Ready"}},
		{"no replica", meta, with(func(st *spec.ClusterStatus) { st.Instances = st.Instances[:1] }), "", http.StatusConflict, "", []string{"no replica"}},
		{"only errant replicas", meta, with(func(st *spec.ClusterStatus) { st.ErrantInstances = []string{"shop-1", "shop-2"} }), "",
			http.StatusConflict, "", []string{"no replica"}},
		{"unknown target", meta, readyStatus(), "shop-7", http.StatusBadRequest, "to", []string{`"shop-7"`, "shop-0, shop-1, shop-2"}},
		{"target is the primary", meta, readyStatus(), "shop-0", http.StatusBadRequest, "to", []string{"already the primary"}},
		{"errant target", meta, with(func(st *spec.ClusterStatus) { st.ErrantInstances = []string{"shop-2"} }), "shop-2",
			http.StatusBadRequest, "to", []string{"errant"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSwitchover(tc.meta, &tc.st, tc.to)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ref *refusal
			if !errors.As(err, &ref) {
				t.Fatalf("got %v; want a %d refusal", err, tc.code)
			}
			wantReason := spec.ReasonConflict
			if tc.code == http.StatusBadRequest {
				wantReason = spec.ReasonInvalid
			}
			if ref.code != tc.code || ref.reason != wantReason || ref.field != tc.field {
				t.Fatalf("refusal %d %s field %q; want %d %s field %q", ref.code, ref.reason, ref.field, tc.code, wantReason, tc.field)
			}
			for _, s := range tc.says {
				if !strings.Contains(ref.msg, s) {
					t.Errorf("message %q does not say %q", ref.msg, s)
				}
			}
		})
	}
}

func TestNewSwitchover(t *testing.T) {
	st := readyStatus()
	now := time.Date(2026, 11, 26, 10, 15, 0, 123456789, time.UTC)
	op := newSwitchover(&st, "shop-1", now)
	want := spec.Operation{ID: "switchover-20261126T101500123Z", Kind: spec.OperationSwitchover, From: "shop-0", To: "shop-1",
		Step: spec.StepRequested, Reason: "requested through the API", StartedAt: now}
	if op != want {
		t.Fatalf("got %+v\nwant %+v", op, want)
	}
	st.LastFailover = &spec.FailoverRecord{ID: op.ID}
	if again := newSwitchover(&st, "", now); again.ID != "switchover-20261126T101500123456789Z" {
		t.Fatalf("an id already taken was reused: %s", again.ID)
	}
}

func TestDecodeSwitchoverRequest(t *testing.T) {
	for body, want := range map[string]string{`{}`: "", `null`: "", `{"to": "shop-1"}`: "shop-1", "to: shop-2\n": "shop-2", `{"to": null}`: ""} {
		got, err := decodeSwitchoverRequest([]byte(body))
		if err != nil || got.To != want {
			t.Errorf("%s: %+v, %v; want to=%q", body, got, err, want)
		}
	}
	_, err := decodeSwitchoverRequest([]byte(`{"target": "shop-1", "to": 1}`))
	var errs spec.ErrorList
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Field != "target" || errs[0].Type != spec.ErrorTypeUnknown ||
		errs[1].Field != "to" || errs[1].Type != spec.ErrorTypeWrongType {
		t.Fatalf("got %v; want an unknown target and a mistyped to", err)
	}
	if _, err := decodeSwitchoverRequest([]byte(`["shop-1"]`)); err == nil || errors.As(err, &errs) {
		t.Fatalf("an array: %v; want a plain error", err)
	}
}

func TestRequestReseed(t *testing.T) {
	meta := spec.ObjectMeta{Name: "shop", Namespace: "default"}
	st := readyStatus()
	if err := requestReseed(meta, &st, "shop-1"); err == nil || !strings.Contains(err.Error(), "not errant") {
		t.Fatalf("re-seed of a healthy instance: %v; want a refusal saying it is not errant", err)
	}
	st.ErrantInstances = []string{"shop-1"}
	for range 2 { // asking twice is asking once
		if err := requestReseed(meta, &st, "shop-1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.ReseedRequested) != 1 || st.ReseedRequested[0] != "shop-1" {
		t.Fatalf("reseedRequested %v; want [shop-1]", st.ReseedRequested)
	}
	deleting := meta
	deleting.DeletionTimestamp = &time.Time{}
	var ref *refusal
	if err := requestReseed(deleting, &st, "shop-1"); !errors.As(err, &ref) || ref.code != http.StatusConflict {
		t.Fatalf("re-seed while deleting: %v; want 409", err)
	}
}
