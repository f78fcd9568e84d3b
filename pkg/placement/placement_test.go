package placement

import (
	"fmt"
	"testing"
)

func agents(n int, cpus, mem float64) []Offer {
	var out []Offer
	for i := 1; i <= n; i++ {
		out = append(out, Offer{
			ID: fmt.Sprintf("o%d", i), AgentID: fmt.Sprintf("a%d", i), Hostname: fmt.Sprintf("host-%d", i),
			Attributes: map[string]string{"rack": fmt.Sprintf("r%d", (i+1)/2)},
			CPUs:       cpus, MemMiB: mem, DiskMiB: 100000,
			Ports: []PortRange{{31000, 31009}},
		})
	}
	return out
}

func requests(cluster string, n int) []Request {
	var out []Request
	for i := range n {
		out = append(out, Request{
			Cluster: cluster, Instance: fmt.Sprintf("%s-%d", cluster, i),
			CPUs: 1, MemMiB: 512, DiskMiB: 1024, Ports: 1, SpreadKey: SpreadHostname, MaxPerDomain: 1,
		})
	}
	return out
}

func agentsOf(as []Assignment, cluster string) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		if a.Request.Cluster == cluster {
			out[a.AgentID]++
		}
	}
	return out
}

func TestSpreadsOneClusterOverHosts(t *testing.T) {
	got := Place(requests("db", 3), agents(3, 8, 8192), Placed{})
	if len(got) != 3 {
		t.Fatalf("placed %d of 3", len(got))
	}
	if per := agentsOf(got, "db"); len(per) != 3 {
		t.Fatalf("instances on agents %v; want three distinct agents", per)
	}
}

func TestNeverPutsTwoInstancesOnOneHostByDefault(t *testing.T) {
	got := Place(requests("db", 3), agents(2, 64, 65536), Placed{})
	if len(got) != 2 {
		t.Fatalf("placed %d instances on 2 hosts with one per host; want 2", len(got))
	}
}

func TestRespectsInstancesAlreadyRunning(t *testing.T) {
	placed := Placed{}
	placed.Add("db", "hostname=host-1")
	got := Place(requests("db", 2), agents(3, 8, 8192), placed)
	for _, a := range got {
		if a.AgentID == "a1" {
			t.Fatal("placed a second instance beside the one running on host-1")
		}
	}
	if len(got) != 2 {
		t.Fatalf("placed %d of 2", len(got))
	}
}

func TestSpreadByAttributeAndLimit(t *testing.T) {
	reqs := requests("db", 4)
	for i := range reqs {
		reqs[i].SpreadKey, reqs[i].MaxPerDomain = "rack", 2
	}
	got := Place(reqs, agents(4, 8, 8192), Placed{}) // racks: r1 = a1,a2; r2 = a3,a4
	racks := map[string]int{}
	for _, a := range got {
		racks[map[string]string{"a1": "r1", "a2": "r1", "a3": "r2", "a4": "r2"}[a.AgentID]]++
	}
	if len(got) != 4 || racks["r1"] != 2 || racks["r2"] != 2 {
		t.Fatalf("rack spread %v from %d placements; want 2 per rack", racks, len(got))
	}
	noRack := agents(1, 8, 8192)
	delete(noRack[0].Attributes, "rack")
	if got := Place(reqs[:1], noRack, Placed{}); len(got) != 0 {
		t.Fatal("placed on an agent without the spread attribute")
	}
}

func TestSpreadNoneAllowsColocation(t *testing.T) {
	reqs := requests("db", 3)
	for i := range reqs {
		reqs[i].SpreadKey = SpreadNone
	}
	if got := Place(reqs, agents(1, 8, 8192), Placed{}); len(got) != 3 {
		t.Fatalf("placed %d of 3 with spreading off", len(got))
	}
}

func TestRequiredAttributes(t *testing.T) {
	reqs := requests("db", 1)
	reqs[0].Attributes = map[string]string{"rack": "r2"}
	got := Place(reqs, agents(4, 8, 8192), Placed{})
	if len(got) != 1 || (got[0].AgentID != "a3" && got[0].AgentID != "a4") {
		t.Fatalf("got %+v; want an agent in rack r2", got)
	}
}

func TestPinnedRequestGoesToItsAgentOnly(t *testing.T) {
	reqs := requests("db", 1)
	reqs[0].AgentID = "a2"
	got := Place(reqs, agents(3, 8, 8192), Placed{})
	if len(got) != 1 || got[0].AgentID != "a2" {
		t.Fatalf("pinned request placed at %+v; want a2", got)
	}
	reqs[0].AgentID = "gone"
	if got := Place(reqs, agents(3, 8, 8192), Placed{}); len(got) != 0 {
		t.Fatal("a request pinned to an absent agent was placed elsewhere")
	}
}

// TestPacksDifferentClustersDensely: a second cluster's instance goes to the
// agent the first already uses, leaving the other agent whole.
func TestPacksDifferentClustersDensely(t *testing.T) {
	offers := agents(2, 4, 4096)
	offers[0].CPUs, offers[0].MemMiB = 3, 3072 // a1 already runs something
	got := Place(append(requests("a", 1), requests("b", 1)...), offers, Placed{})
	if len(got) != 2 || got[0].AgentID != "a1" || got[1].AgentID != "a1" {
		t.Fatalf("got %+v; want both on the fuller agent a1", got)
	}
}

func TestResourcesAndPortsAreNotOversubscribed(t *testing.T) {
	offers := agents(1, 2.5, 8192)
	reqs := requests("db", 3)
	for i := range reqs {
		reqs[i].SpreadKey = SpreadNone
	}
	got := Place(reqs, offers, Placed{})
	if len(got) != 2 {
		t.Fatalf("placed %d instances of 1 cpu on 2.5 cpus; want 2", len(got))
	}
	if got[0].Ports[0] == got[1].Ports[0] {
		t.Fatalf("two instances got port %d", got[0].Ports[0])
	}
	offers[0].Ports = []PortRange{{31000, 31000}}
	if got := Place(reqs, offers, Placed{}); len(got) != 1 {
		t.Fatalf("placed %d instances with one free port; want 1", len(got))
	}
}

// TestClustersShareScarceOffersFairly: with room for two instances, two
// clusters get one each rather than the first taking both.
func TestClustersShareScarceOffersFairly(t *testing.T) {
	offers := agents(2, 1, 8192)
	got := Place(append(requests("big", 3), requests("small", 1)...), offers, Placed{})
	if len(agentsOf(got, "big")) != 1 || len(agentsOf(got, "small")) != 1 {
		t.Fatalf("got %+v; want one instance of each cluster", got)
	}
}

// BenchmarkPlace100Agents300Instances: one allocation cycle of a busy
// scheduler, 100 clusters of 3 instances against 100 offers.
func BenchmarkPlace100Agents300Instances(b *testing.B) {
	offers := agents(100, 16, 65536)
	var reqs []Request
	for c := range 100 {
		reqs = append(reqs, requests(fmt.Sprintf("c%d", c), 3)...)
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := Place(reqs, offers, Placed{}); len(got) != 300 {
			b.Fatalf("placed %d of 300", len(got))
		}
	}
}
