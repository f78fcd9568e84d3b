package ctl

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mysos-project/mysos/pkg/spec"
)

var eventT0 = time.Date(2026, 11, 26, 10, 15, 0, 123_000_000, time.UTC)

func sampleEvents() []spec.Event {
	return []spec.Event{
		{Time: eventT0, Namespace: "default", Cluster: "shop", Type: spec.EventNormal, Reason: "SwitchoverRequested",
			Operation: "switchover-1", Elapsed: "0s", Message: "requested through the API"},
		{Time: eventT0.Add(412 * time.Millisecond), Namespace: "default", Cluster: "shop", Type: spec.EventNormal, Reason: "Promoted",
			Operation: "switchover-1", Elapsed: "412ms", Instance: "shop-1", Message: "shop-1 is the primary\nwrites open"},
		{Time: eventT0.Add(time.Second), Namespace: "default", Cluster: "cart", Type: spec.EventWarning, Reason: "Errant",
			Instance: "cart-0", Message: "holds 2 transactions the primary lacks"},
		{Time: eventT0.Add(2 * time.Second), Namespace: "prod", Cluster: "db", Type: spec.EventNormal, Reason: "Other", Message: "elsewhere"},
	}
}

// fields splits a table line into its columns (tabwriter pads with spaces).
func fields(line string) []string { return strings.Fields(line) }

func TestEventsTable(t *testing.T) {
	f := newFakeAPI(t)
	f.events = sampleEvents()

	lines := strings.Split(strings.TrimRight(f.mustRun("events", "shop"), "\n"), "\n")
	if got := strings.Join(fields(lines[0]), " "); got != "TIME TYPE REASON OPERATION ELAPSED INSTANCE MESSAGE" {
		t.Fatalf("header of one cluster's events: %s", got)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines; want the header and shop's 2 events:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if got := strings.Join(fields(lines[1]), " "); got != "2026-11-26T10:15:00.123Z Normal SwitchoverRequested switchover-1 0s - requested through the API" {
		t.Errorf("first row: %s", got)
	}
	if got := strings.Join(fields(lines[2]), " "); got != "2026-11-26T10:15:00.535Z Normal Promoted switchover-1 412ms shop-1 shop-1 is the primary writes open" {
		t.Errorf("second row (a multi-line message stays on one): %s", got)
	}

	lines = strings.Split(strings.TrimRight(f.mustRun("events"), "\n"), "\n")
	if got := fields(lines[0]); got[1] != "CLUSTER" || len(lines) != 4 || fields(lines[3])[1] != "cart" {
		t.Fatalf("default's events:\n%s", strings.Join(lines, "\n"))
	}
	lines = strings.Split(strings.TrimRight(f.mustRun("events", "-A"), "\n"), "\n")
	if got := fields(lines[0]); got[1] != "NAMESPACE" || got[2] != "CLUSTER" || len(lines) != 5 || fields(lines[4])[1] != "prod" {
		t.Fatalf("every namespace's events:\n%s", strings.Join(lines, "\n"))
	}
	if errOut := f.mustFail("events", "shop", "-A"); !strings.Contains(errOut, "drop -A") {
		t.Fatalf("a cluster with -A: %s", errOut)
	}
	if errOut := f.mustFail("events", "-o", "wide"); !strings.Contains(errOut, "table, json or yaml") {
		t.Fatalf("-o wide: %s", errOut)
	}
}

func TestEventsEmpty(t *testing.T) {
	f := newFakeAPI(t)
	code, out, errOut := f.run("events", "shop")
	if code != 0 || out != "No events found.\n" || errOut != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want get's \"No ... found.\"", code, out, errOut)
	}
	if out := f.mustRun("events", "-o", "json"); !strings.Contains(out, `"items": []`) {
		t.Fatalf("json of no events: %s", out)
	}
}

func TestEventsStructured(t *testing.T) {
	f := newFakeAPI(t)
	f.events = sampleEvents()
	for _, format := range []string{"json", "yaml"} {
		out := f.mustRun("events", "shop", "-o", format)
		raw := []byte(out)
		if format == "yaml" {
			var err error
			if raw, err = yaml.YAMLToJSON(raw); err != nil {
				t.Fatalf("yaml: %v\n%s", err, out)
			}
		}
		var list spec.EventList
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("-o %s: %v\n%s", format, err, out)
		}
		if list.Kind != spec.EventListKind || list.APIVersion != spec.APIVersion || len(list.Items) != 2 || list.Items[1].Elapsed != "412ms" ||
			!list.Items[0].Time.Equal(eventT0) {
			t.Fatalf("-o %s: %+v", format, list)
		}
	}
}

func TestDescribeOperationAndEvents(t *testing.T) {
	f := newFakeAPI(t)
	f.update(func(c *spec.MySQLCluster) {
		c.Status.Operation = &spec.Operation{ID: "switchover-1", Kind: spec.OperationSwitchover, From: "shop-0", Step: spec.StepCatchingUp,
			StartedAt: time.Now(), Reason: "requested through the API", Blocked: "shop-1 has 3 transactions to apply"}
		c.Status.LastFailover = &spec.FailoverRecord{ID: "failover-9", From: "shop-2", To: "shop-0", At: time.Now().Add(-time.Minute)}
	})
	for i := range 25 {
		f.events = append(f.events, spec.Event{Time: eventT0.Add(time.Duration(i) * time.Second), Namespace: "default", Cluster: "shop",
			Type: spec.EventNormal, Reason: fmt.Sprintf("Step%02d", i), Message: "m"})
	}
	out := f.mustRun("describe", "clusters", "shop")
	for _, want := range []string{
		"Operation:\n", "Kind:", "Switchover", "switchover-1", "shop-0 → the most up-to-date replica", "Step:", "CatchingUp",
		"Blocked:", "shop-1 has 3 transactions to apply",
		"Last failover:\n", "failover-9", "shop-2 → shop-0", "no automatic failover until", "mysosctl failover ack shop",
		"Events:\n", "Step24",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Step04") || !strings.Contains(out, "Step05") {
		t.Errorf("describe shows other than the newest 20 events:\n%s", out)
	}
	if i, j := strings.Index(out, "Instances:"), strings.Index(out, "Events:"); i < 0 || j < i {
		t.Errorf("events are not last:\n%s", out)
	}

	f.update(func(c *spec.MySQLCluster) { c.Status.Operation, c.Status.LastFailover = nil, nil })
	f.mu.Lock()
	f.eventsDown = true
	f.mu.Unlock()
	out = f.mustRun("describe", "clusters", "shop")
	if strings.Contains(out, "Operation:") || strings.Contains(out, "Last failover:") ||
		!strings.Contains(out, "Events:\n  <unable to list events: etcd is down>\n") {
		t.Errorf("describe without an operation, events failing:\n%s", out)
	}
}
