package devcluster

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The agent record's checkpointed resources are written as protobuf and
// read back equal; a record written by older dev clusters (mesos-go's JSON
// objects) still reads; no resources stays distinct from an empty list.
func TestCheckpointResourcesEncoding(t *testing.T) {
	rs, err := ParseResources("cpus(mysos):1.5;disk(mysos):1024;ports(mysos):[31000-31002]")
	if err != nil {
		t.Fatal(err)
	}
	rs[0].Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(),
		Role: aptr("mysos"), Principal: aptr("p"), Labels: &mesos.Labels{Labels: []mesos.Label{{Key: "mysos.io/instance", Value: aptr("shop-0")}}}}}
	meta := ckMeta{AgentID: "a1", CheckpointedResources: ckResources(rs)}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "mysos.io/instance") {
		t.Fatalf("resources written as JSON objects, not protobuf: %s", b)
	}
	var back ckMeta
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !resEqual(back.CheckpointedResources, rs) || len(back.CheckpointedResources) != len(rs) {
		t.Fatalf("read back %s; wrote %s", formatResources(back.CheckpointedResources), formatResources(rs))
	}

	legacy, err := json.Marshal(struct {
		AgentID   string           `json:"agent_id"`
		Resources []mesos.Resource `json:"checkpointed_resources"`
	}{"a1", rs})
	if err != nil {
		t.Fatal(err)
	}
	var old ckMeta
	if err := json.Unmarshal(legacy, &old); err != nil {
		t.Fatalf("legacy record: %v", err)
	}
	if !resEqual(old.CheckpointedResources, rs) {
		t.Fatalf("legacy record read as %s", formatResources(old.CheckpointedResources))
	}

	for _, tc := range []struct {
		in     ckResources
		isNil  bool
		encode string
	}{{nil, true, "null"}, {ckResources{}, false, "[]"}} {
		b, err := json.Marshal(tc.in)
		if err != nil || string(b) != tc.encode {
			t.Fatalf("%#v encodes as %s, %v; want %s", tc.in, b, err, tc.encode)
		}
		var got ckResources
		if err := json.Unmarshal(b, &got); err != nil || (got == nil) != tc.isNil {
			t.Fatalf("%s decodes as %#v, %v", b, got, err)
		}
	}
}

// A diff of checkpointed resources, replayed onto the resources it was
// taken from, gives the new ones as a multiset, whatever was added, removed
// or repeated.
func TestCheckpointResourcesDiff(t *testing.T) {
	pool, err := ParseResources("cpus(a):1;cpus(b):1;mem(a):64;disk(a):128;ports(a):[31000-31000];ports(a):[31005-31006]")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() []mesos.Resource {
		var out []mesos.Resource
		for range rng.IntN(8) {
			out = append(out, pool[rng.IntN(len(pool))])
		}
		return out
	}
	for i := range 500 {
		from, to := pick(), pick()
		d, set := diffResources(resourceMultiset(from), to)
		got := d.apply(ckResources(from))
		if !maps.Equal(resourceMultiset(got), resourceMultiset(to)) || !maps.Equal(set, resourceMultiset(to)) {
			t.Fatalf("case %d: %s -> %s: diff -%s +%s gives %s", i, formatResources(from), formatResources(to),
				formatResources(d.Del), formatResources(d.Add), formatResources(got))
		}
		if len(to) == 0 && got != nil {
			t.Fatalf("case %d: no resources replay as %#v, not nil", i, got)
		}
	}
}
