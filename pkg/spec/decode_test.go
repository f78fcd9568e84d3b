package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimalYAML = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: orders
`

// withSpec returns a minimal document with the given spec lines (indented
// by two spaces) appended.
func withSpec(lines string) string {
	return minimalYAML + "spec:\n" + lines
}

func fieldsOfErr(t *testing.T, err error) []string {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %q is not an ErrorList", err)
	}
	var fields []string
	for _, e := range list {
		fields = append(fields, e.Field)
	}
	return fields
}

func TestDecodeFull(t *testing.T) {
	in := `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: orders
  namespace: shop
  labels: {team: shop}
  uid: 0b6a7c2e
  generation: 4
  resourceVersion: "812"
  creationTimestamp: "2024-05-01T14:00:00+02:00"
  finalizers: [mysos.io/tasks]
spec:
  replicas: 5
  flavor: mysql
  version: "8.0"
  resources: {cpus: 2, mem: 1e9, disk: 50Gi}
  mysqlConfig: {max_connections: "500"}
  users:
    - name: app
      databases: [shop]
      privileges: [select]
  placement: {spreadKey: rack, maxPerDomain: 2, attributes: {zone: eu-1}, role: dba}
  backup: {schedule: "@daily", destination: "hdfs://nn:8020/b", retention: {keep: 3}, binlogArchiving: yes}
  restore: {from: "orders/20240430T220000Z", pointInTime: 2024-04-30T23:00:00Z}
status:
  phase: Running
  observedGeneration: 4
  readyReplicas: 5
  conditions:
    - type: Ready
      status: "True"
      lastTransitionTime: "2024-05-01T12:00:00Z"
`
	c, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	checks := []struct {
		name      string
		got, want any
	}{
		{"namespace", c.Metadata.Namespace, "shop"},
		{"labels", c.Metadata.Labels, map[string]string{"team": "shop"}},
		{"generation", c.Metadata.Generation, int64(4)},
		{"creationTimestamp in UTC", *c.Metadata.CreationTimestamp, created},
		{"replicas", *c.Spec.Replicas, int32(5)},
		{"cpus from a number", c.Spec.Resources.CPUs, Quantity("2")},
		{"mem from an exponent", c.Spec.Resources.Memory, Quantity("1000000000")},
		{"privileges as written", c.Spec.Users[0].Privileges, []string{"select"}},
		{"maxPerDomain", *c.Spec.Placement.MaxPerDomain, int32(2)},
		{"binlogArchiving from yes", c.Spec.Backup.BinlogArchiving, true},
		{"pointInTime as text", c.Spec.Restore.PointInTime, "2024-04-30T23:00:00Z"},
		{"retention.keep", *c.Spec.Backup.Retention.Keep, int32(3)},
		{"status phase", c.Status.Phase, PhaseRunning},
		{"condition", c.Status.Conditions[0].LastTransitionTime, created},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v; want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestDecodeAppliesNoDefaults(t *testing.T) {
	c, err := Decode([]byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Namespace != "" || c.Spec.Replicas != nil || c.Spec.Flavor != "" {
		t.Fatalf("Decode applied defaults: %+v", c)
	}
}

func TestDecodeUnknownFieldSuggestion(t *testing.T) {
	tests := []struct{ in, want string }{
		{withSpec("  replica: 3\n"), `spec.replica: Unknown field: did you mean "replicas"?`},
		{withSpec("  Replicas: 3\n"), `spec.Replicas: Unknown field: did you mean "replicas"?`},
		{withSpec("  resources: {memory: 1Gi}\n"), `spec.resources.memory: Unknown field: did you mean "mem"?`},
		{withSpec("  flavour: mysql\n"), `spec.flavour: Unknown field: did you mean "flavor"?`},
		{withSpec("  users: [{name: a, nmae: b}]\n"), `spec.users[0].nmae: Unknown field: did you mean "name"?`},
		{minimalYAML + "apiversion: x\n", `apiversion: Unknown field: did you mean "apiVersion"?`},
		{withSpec("  zzz: 1\n"), `spec.zzz: Unknown field: known fields are replicas, flavor, version, resources, mysqlConfig, users, placement, backup, restore, failover, tls, router`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode:\n got %v\nwant %s", err, tt.want)
		}
	}
}

func TestDecodeCollectsAllErrors(t *testing.T) {
	in := withSpec(`  replica: 3
  replicas: three
  version: 10.10
  resources:
    cpus: [1]
    mem: true
  users:
    - name: a
    - name: 7
      databases: shop
  placement:
    maxPerDomain: 1.5
`) + "status:\n  readyReplicas: \"2\"\n"
	_, err := Decode([]byte(in))
	want := []string{
		"spec.placement.maxPerDomain",
		"spec.replica",
		"spec.replicas",
		"spec.resources.cpus",
		"spec.resources.mem",
		"spec.users[1].databases",
		"spec.users[1].name",
		"spec.version",
		"status.readyReplicas",
	}
	if got := fieldsOfErr(t, err); !slices.Equal(got, want) {
		t.Fatalf("fields = %q; want %q\n%v", got, want, err)
	}
}

func TestDecodeWrongTypes(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"string for integer", withSpec("  replicas: three\n"), `spec.replicas: Wrong type: "three": expected an integer`},
		{"quoted integer", withSpec("  replicas: \"3\"\n"), `spec.replicas: Wrong type: "3": expected an integer; write it without quotes`},
		{"fraction for integer", withSpec("  replicas: 1.5\n"), `spec.replicas: Wrong type: 1.5: expected an integer`},
		{"int32 overflow", withSpec("  replicas: 2147483648\n"), `spec.replicas: Invalid value: 2147483648: out of range: must be between -2147483648 and 2147483647`},
		{"number for string", withSpec("  version: 10.10\n"), `spec.version: Wrong type: 10.1: expected a string; put the value in quotes, or YAML reads it as a number (10.10 becomes 10.1)`},
		{"bool for string", minimalYAML + "  labels: {enabled: yes}\n", `metadata.labels[enabled]: Wrong type: true: expected a string; put the value in quotes, or YAML reads it as a boolean (yes, no, on and off become true or false)`},
		{"list for object", withSpec("  resources: [1]\n"), `spec.resources: Wrong type: expected an object, found a list`},
		{"object for list", withSpec("  users: {name: a}\n"), `spec.users: Wrong type: expected a list, found an object`},
		{"string for bool", withSpec("  backup: {binlogArchiving: \"true\"}\n"), `spec.backup.binlogArchiving: Wrong type: "true": expected true or false; write it without quotes`},
		{"bad timestamp", minimalYAML + "  creationTimestamp: yesterday\n", `metadata.creationTimestamp: Wrong type: "yesterday": expected a timestamp in RFC 3339 form such as 2024-05-01T12:00:00Z`},
		{"bool for quantity", withSpec("  resources: {cpus: true}\n"), `spec.resources.cpus: Wrong type: true: expected a quantity such as 500m, 512Mi or 2Gi`},
		{"number for config value", withSpec("  mysqlConfig: {max_connections: 500}\n"), `spec.mysqlConfig[max_connections]: Wrong type: 500: expected a string; put the value in quotes, or YAML reads it as a number (10.10 becomes 10.1)`},
		{"scalar metadata", "metadata: x\n", `metadata: Wrong type: "x": expected an object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Decode:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestDecodeNullIsUnset(t *testing.T) {
	c, err := Decode([]byte(minimalYAML + "  labels: ~\n  namespace: null\nspec:\n  replicas: null\n  backup: null\n  users: [{name: a, host: null}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Labels != nil || c.Spec.Replicas != nil || c.Spec.Backup != nil || c.Spec.Users[0].Host != "" {
		t.Fatalf("nulls must decode as unset: %+v", c)
	}
}

func TestDecodeEmptyCollectionsAreUnset(t *testing.T) {
	c, err := Decode([]byte(minimalYAML + "  labels: {}\n  finalizers: []\nspec:\n  users: []\n  backup: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metadata.Labels != nil || c.Metadata.Finalizers != nil || c.Spec.Users != nil {
		t.Fatalf("empty maps and lists must decode as nil: %+v", c.Metadata)
	}
	if c.Spec.Backup == nil {
		t.Fatal("an empty backup section is still a backup section")
	}
}

func TestDecodeDuplicateKeys(t *testing.T) {
	tests := []struct{ in, want string }{
		{withSpec("  replicas: 3\n  replicas: 5\n"), `invalid YAML: line 7: key "replicas" appears twice in the same mapping`},
		{`{"kind": "MySQLCluster", "spec": {"replicas": 1, "replicas": 2}}`, `invalid JSON: line 1: key "replicas" appears twice in the same object`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode:\n got %v\nwant %s", err, tt.want)
		}
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"yaml", minimalYAML + "spec:\n  users: [a\n", "invalid YAML: line 6: did not find expected ',' or ']'"},
		{"yaml tab", minimalYAML + "spec:\n\treplicas: 3\n", "invalid YAML: line 6: found character that cannot start any token"},
		{"yaml in second document", "kind: MySQLCluster\n---\na: 1\nb: [\n", "invalid YAML: line 4:"},
		{"json", "{\n\"kind\": \"MySQLCluster\",\n\"spec\": {\"replicas\": }\n}", "invalid JSON: line 3: invalid character '}' looking for beginning of value"},
		{"json truncated", `{"kind": "MySQLCluster"`, "invalid JSON: line 1: unexpected end of input"},
		{"content after separator", "--- {kind: MySQLCluster}\n", `invalid YAML: line 1: text after the document separator "---" is not supported`},
		{"not an object", "- a\n- b\n", "expected a MySQLCluster object with apiVersion, kind, metadata and spec, found a list"},
		{"scalar", "hello\n", "found a string"},
		{"infinity", withSpec("  resources: {cpus: .inf}\n"), "the values .inf and .nan cannot be used"},
		{"deep JSON", strings.Repeat("{\"a\":", 200) + strings.Repeat("}", 200), "nested more than 100 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeAll([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeAll:\n got %v\nwant it to contain %s", err, tt.want)
			}
		})
	}
}

func TestDecodeEmptyInput(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# just a comment\n", "---\n---\n", "~\n", "null", "\xef\xbb\xbf"} {
		if _, err := Decode([]byte(in)); err == nil || err.Error() != "no MySQLCluster document found" {
			t.Errorf("Decode(%q) = %v", in, err)
		}
		if _, err := DecodeAll([]byte(in)); err == nil || err.Error() != "no MySQLCluster document found" {
			t.Errorf("DecodeAll(%q) = %v", in, err)
		}
	}
}

func TestDecodeRefusesSeveralDocuments(t *testing.T) {
	_, err := Decode([]byte(minimalYAML + "---\n" + minimalYAML))
	if err == nil || !strings.Contains(err.Error(), "found 2 documents (the second starts at line 6); expected exactly one") {
		t.Fatalf("Decode = %v", err)
	}
}

func TestDecodeAllMultiDocument(t *testing.T) {
	in := "---\n# header comment only\n---   # separator with a comment\n" + minimalYAML +
		"---\n\n---\n" + strings.Replace(minimalYAML, "orders", "billing", 1) + "...\n"
	objs, err := DecodeAll([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.Metadata.Name)
	}
	if !slices.Equal(names, []string{"orders", "billing"}) {
		t.Fatalf("names = %q", names)
	}
}

func TestDecodeAllNamesTheDocument(t *testing.T) {
	in := "# leading comment\n---\n" + minimalYAML + "---\n# empty\n---\n" + withSpec("  replicas: three\n  replica: 1\n")
	_, err := DecodeAll([]byte(in))
	want := "document 2: spec.replica: Unknown field: did you mean \"replicas\"?\n" +
		"document 2: spec.replicas: Wrong type: \"three\": expected an integer"
	if err == nil || err.Error() != want {
		t.Fatalf("DecodeAll:\n got %v\nwant %s", err, want)
	}
	var de *DocumentError
	if !errors.As(err, &de) || de.Index != 2 || de.Line != 10 {
		t.Fatalf("DocumentError = %+v", de)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("the ErrorList must be reachable with errors.As: %v", list)
	}
}

func TestDecodeAllReportsEveryBadDocument(t *testing.T) {
	in := withSpec("  x: 1\n") + "---\n" + minimalYAML + "---\n" + withSpec("  zz: 1\n")
	_, err := DecodeAll([]byte(in))
	if err == nil {
		t.Fatal("expected errors")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "document 1: spec.x") || !strings.HasPrefix(lines[1], "document 3: spec.zz") {
		t.Fatalf("errors = %q", lines)
	}
}

func TestDecodeJSON(t *testing.T) {
	in := "{\n\t\"apiVersion\": \"mysos.io/v1alpha1\",\n\t\"kind\": \"MySQLCluster\",\n\t\"metadata\": {\"name\": \"orders\"},\n" +
		"\t\"spec\": {\"replicas\": 3, \"resources\": {\"cpus\": 0.5, \"mem\": \"1Gi\"}}\n}\n"
	c, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Spec.Replicas != 3 || c.Spec.Resources.CPUs != "0.5" || c.Metadata.Name != "orders" {
		t.Fatalf("decoded %+v", c)
	}
	_, err = Decode([]byte(`{"kind": "MySQLCluster", "spec": {"replica": 3}}`))
	if err == nil || err.Error() != `spec.replica: Unknown field: did you mean "replicas"?` {
		t.Fatalf("Decode = %v", err)
	}
}

func TestDecodeAllJSONStream(t *testing.T) {
	in := `{"kind": "MySQLCluster", "metadata": {"name": "a"}}
null
{"kind": "MySQLCluster", "metadata": {"name": "b"}, "spec": {"replicas": "2"}}`
	_, err := DecodeAll([]byte(in))
	if err == nil || !strings.HasPrefix(err.Error(), "document 2: spec.replicas: Wrong type") {
		t.Fatalf("DecodeAll = %v", err)
	}
}

func TestDecodeLineEndingsAndBOM(t *testing.T) {
	in := "\xef\xbb\xbf" + strings.ReplaceAll(minimalYAML+"---\r\n"+minimalYAML, "\n", "\r\n")
	objs, err := DecodeAll([]byte(in))
	if err != nil || len(objs) != 2 {
		t.Fatalf("DecodeAll = %d objects, %v", len(objs), err)
	}
}

func TestParse(t *testing.T) {
	objs, err := Parse([]byte(minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].Metadata.Namespace != DefaultNamespace || *objs[0].Spec.Replicas != DefaultReplicas {
		t.Fatalf("Parse must apply defaults: %+v", objs[0])
	}
	in := minimalYAML + "---\n" + strings.Replace(minimalYAML, "name: orders", "name: Orders", 1) + "spec:\n  replicas: 0\n"
	_, err = Parse([]byte(in))
	want := "document 2: metadata.name: Invalid value: \"Orders\": must consist of lowercase letters, digits and '-', " +
		"starting and ending with a letter or digit, e.g. \"orders-db\"\n" +
		"document 2: spec.replicas: Invalid value: 0: must be at least 1: scaling down to 0 is not supported; delete the cluster instead"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse:\n got %v\nwant %s", err, want)
	}
}

// TestDecodeEveryField guards the walker: every field of every type must
// survive encoding and strict decoding, so a field added to types.go with a
// type the walker does not know fails here rather than in production.
func TestDecodeEveryField(t *testing.T) {
	c := validCluster()
	now := time.Date(2024, 5, 1, 12, 0, 0, 500, time.UTC)
	c.Metadata.UID = "9c1f"
	c.Metadata.Generation = 3
	c.Metadata.ResourceVersion = "17"
	c.Metadata.CreationTimestamp = &now
	c.Metadata.DeletionTimestamp = &now
	c.Metadata.Finalizers = []string{"mysos.io/tasks"}
	c.Spec.Backup.BinlogArchiving = true
	c.Status = ClusterStatus{
		Phase:              PhaseDegraded,
		ObservedGeneration: 3,
		Conditions: []Condition{{Type: ConditionReady, Status: ConditionFalse, Reason: "InstanceLost",
			Message: "orders-1 is gone", ObservedGeneration: 3, LastTransitionTime: now}},
		CurrentPrimary: "orders-0",
		ReadyReplicas:  2,
		Instances: []InstanceStatus{{Name: "orders-0", TaskID: "t0", AgentID: "a0", Host: "h0", Port: 3306,
			State: "TASK_RUNNING", Role: "primary", Healthy: true}},
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip changed the object:\n got %+v\nwant %+v", got, c)
	}
}

// TestParseOneReportsDecodingAndValidationErrorsTogether: one answer names
// every problem, whether the decoder or the validator found it, and a field
// that failed to decode is not reported a second time as missing.
func TestParseOneReportsDecodingAndValidationErrorsTogether(t *testing.T) {
	_, err := ParseOne([]byte(`apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: 7
spec:
  replica: 3
  resources: {mem: 12Q}
`))
	var errs ErrorList
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want an ErrorList", err)
	}
	got := map[string]int{}
	for _, e := range errs {
		got[e.Field]++
	}
	for _, field := range []string{"metadata.name", "spec.replica", "spec.resources.mem"} {
		if got[field] != 1 {
			t.Errorf("%s reported %d times, want once:\n%v", field, got[field], err)
		}
	}
}
