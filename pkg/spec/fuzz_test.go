package spec

import (
	"encoding/json"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	minimalYAML,
	`# A three-instance MariaDB cluster.
apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: quickstart
  labels:
    app: demo
spec:
  replicas: 3
  flavor: mariadb
  version: "10.11"
  resources:
    cpus: 500m
    mem: 512Mi
    disk: 1Gi
  mysqlConfig:
    max_connections: "200"
  users:
    - name: app
      databases: [shop]
      privileges: [SELECT, INSERT, UPDATE, DELETE]
`,
	`apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: orders
  namespace: shop
  labels: {team: shop}
  annotations: {owner: shop-oncall@example.com}
  uid: 9c1f
  generation: 2
  resourceVersion: "17"
  creationTimestamp: "2024-05-01T14:00:00.5+02:00"
  finalizers: [mysos.io/tasks]
spec:
  replicas: 3
  flavor: mysql
  resources: {cpus: 2, mem: 4Gi, disk: 50Gi}
  users:
    - {name: orders, host: "%", databases: [orders], privileges: [all]}
    - {name: monitor, databases: ["*"], privileges: [process, replication client]}
  placement: {spreadKey: rack, maxPerDomain: 1, attributes: {zone: eu-1}, role: mysos}
  backup: {schedule: "0 3 * * *", destination: "hdfs://namenode:8020/mysos/backups", retention: {keep: 7, maxAge: 720h}, binlogArchiving: true}
  restore: {from: "orders-old/20240430T235959Z", destination: "hdfs://namenode:8020/mysos/backups"}
status:
  phase: Running
  observedGeneration: 2
  readyReplicas: 3
  conditions: [{type: Ready, status: "True", lastTransitionTime: "2024-05-01T12:00:00Z"}]
  instances: [{name: orders-0, port: 3306, healthy: true}]
`,
	`{"apiVersion":"mysos.io/v1alpha1","kind":"MySQLCluster","metadata":{"name":"j","labels":{}},"spec":{"replicas":1,"resources":{"cpus":0.25,"mem":1e9}}}`,
	"---\n" + minimalYAML + "---\n# nothing\n---\n" + minimalYAML,
	withSpec("  replica: 3\n  replicas: three\n"),
	withSpec("  replicas: 3\n  replicas: 4\n"),
	withSpec("  resources: {mem: 512m, cpus: -1}\n  mysqlConfig: {server-id: \"1\"}\n"),
	withSpec("  backup: {schedule: \"TZ=UTC\", destination: \"hdfs://nn/b\"}\n"),
	"--- {a: 1}\n",
	"[1, 2]",
	"~",
	"",
}

// FuzzParse checks that no input panics the decoder, and that whatever
// Parse accepts survives a round trip through JSON (the API's wire format)
// unchanged, with SetDefaults idempotent along the way.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode(data)
		if decoded, err := DecodeAll(data); err == nil {
			for _, obj := range decoded {
				checkDefaultsAndRoundTrip(t, obj)
			}
		}
		objs, err := Parse(data)
		if err != nil {
			return
		}
		for _, obj := range objs {
			raw, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("marshal %+v: %v", obj, err)
			}
			again, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse accepted %q but not its JSON %s: %v", data, raw, err)
			}
			if len(again) != 1 || !reflect.DeepEqual(again[0], obj) {
				t.Fatalf("round trip changed the object:\n before %+v\n after  %+v", obj, again[0])
			}
		}
	})
}

// checkDefaultsAndRoundTrip holds for every decodable object, valid or not:
// defaulting twice changes nothing, and the defaulted object decodes back
// from its JSON to the same value.
func checkDefaultsAndRoundTrip(t *testing.T, obj *MySQLCluster) {
	t.Helper()
	SetDefaults(obj)
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal %+v: %v", obj, err)
	}
	again, err := Decode(raw)
	if err != nil {
		t.Fatalf("decoded object does not decode from its own JSON %s: %v", raw, err)
	}
	SetDefaults(again)
	if !reflect.DeepEqual(again, obj) {
		t.Fatalf("SetDefaults is not idempotent or the round trip changed the object:\n before %+v\n after  %+v", obj, again)
	}
}
