package offers

import (
	"fmt"
	"testing"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/placement"
)

// Benchmarks of offer matching (docs/benchmarks.md, "Hot paths"): what the
// reconciler's Launcher does with one OFFERS event, minus the etcd writes.
// Each offer is read (Read, Placement), the pending instances are placed
// (placement.Place) and every assignment becomes the operations of an
// ACCEPT (Launch.Operations).

const benchRole = "mysos"

func benchAlloc(r mesos.Resource) mesos.Resource {
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(benchRole)}
	return r
}

// benchLaunch is instance ord of cluster c, as the Launcher describes it.
func benchLaunch(c, ord int, agent string, port uint64) Launch {
	name := fmt.Sprintf("db%03d-%d", c, ord)
	return Launch{
		Owner:     Owner{Instance: fmt.Sprintf("team%d/db%03d/%d", c%7, c, ord), ClusterUID: fmt.Sprintf("9f1c2e7a-%04d-4b8e-a1d2-6c0f3b5e%04d", c, c), PersistenceID: fmt.Sprintf("team%d.db%03d.%d.a1b2c3d4", c%7, c, ord)},
		Role:      benchRole,
		Principal: "mysos",
		CPUs:      1, MemMiB: 2048, DiskMiB: 10240, Port: port,
		ExecutorCPUs: 0.1, ExecutorMemMiB: 32,
		FrameworkID: "3f0e8b6a-2c1d-4e5f-9a8b-7c6d5e4f3a2b-0000", AgentID: agent,
		TaskID:   fmt.Sprintf("mysos.team%d.db%03d.%d.1-%08x", c%7, c, ord, c*31+ord),
		TaskName: name,
		Command: mesos.CommandInfo{
			Value: proto.String("exec ./mysos-executor"), Shell: proto.Bool(true),
			URIs: []mesos.CommandInfo_URI{{Value: "http://scheduler:8080/artifacts/mysos-executor", Executable: proto.Bool(true), OutputFile: proto.String("mysos-executor")}},
		},
		Data:   make([]byte, 2048), // the task data: cluster spec, passwords, certificates
		Labels: map[string]string{"mysos.io/cluster": fmt.Sprintf("team%d/db%03d", c%7, c), "mysos.io/instance": name},
	}
}

// benchOffers are n agents of 16 cpus, 64 GiB, 500 GiB of disk and 1001
// ports, in 10 racks. Every fifth also offers back the reservation and
// volume of an instance whose task ended, which Read groups by owner.
func benchOffers(n int) []mesos.Offer {
	out := make([]mesos.Offer, n)
	for i := range out {
		agent := fmt.Sprintf("a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d-S%d", i)
		rs := []mesos.Resource{
			benchAlloc(mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 16}}),
			benchAlloc(mesos.Resource{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 65536}}),
			benchAlloc(mesos.Resource{Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 512000}}),
			benchAlloc(mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}}}),
		}
		if i%5 == 0 {
			rs = append(rs, offeredBack(benchLaunch(1000+i, 0, agent, 31500).Operations(nil))...)
		}
		out[i] = mesos.Offer{
			ID:          mesos.OfferID{Value: fmt.Sprintf("3f0e8b6a-2c1d-4e5f-9a8b-7c6d5e4f3a2b-O%d", 4000+i)},
			AgentID:     mesos.AgentID{Value: agent},
			FrameworkID: mesos.FrameworkID{Value: "3f0e8b6a-2c1d-4e5f-9a8b-7c6d5e4f3a2b-0000"},
			Hostname:    fmt.Sprintf("mesos-agent-%03d.dc1.example.com", i),
			Attributes: []mesos.Attribute{
				{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: fmt.Sprintf("r%d", i%10)}},
				{Name: "zone", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "eu-1"}},
			},
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto.String(benchRole)},
			Resources:      rs,
		}
	}
	return out
}

// offeredBack is what Mesos offers of a reservation once its task is gone:
// the reserved resources, the disk as the created volume.
func offeredBack(ops []mesos.Offer_Operation) []mesos.Resource {
	var out []mesos.Resource
	for _, op := range ops {
		switch op.Type {
		case mesos.Offer_Operation_RESERVE:
			for _, r := range op.Reserve.Resources {
				if r.Name != "disk" {
					out = append(out, r)
				}
			}
		case mesos.Offer_Operation_CREATE:
			out = append(out, op.Create.Volumes...)
		}
	}
	return out
}

// benchRequests are the pending instances of clusters of 3, spread one per
// host (the default), as the Launcher asks placement: the task plus the
// executor's overhead, one port.
func benchRequests(instances int) []placement.Request {
	out := make([]placement.Request, instances)
	for i := range out {
		c, ord := i/3, i%3
		out[i] = placement.Request{
			Cluster: fmt.Sprintf("team%d/db%03d", c%7, c), Instance: fmt.Sprintf("team%d/db%03d/%d", c%7, c, ord),
			CPUs: 1.1, MemMiB: 2080, DiskMiB: 10240, Ports: 1,
			SpreadKey: placement.SpreadHostname, MaxPerDomain: 1,
			Attributes: map[string]string{"zone": "eu-1"},
		}
	}
	return out
}

// matchOffers is one OFFERS event: read, place, and write the ACCEPTs.
func matchOffers(ms []mesos.Offer, requests []placement.Request) (map[string][]mesos.Offer_Operation, int) {
	views := make([]placement.Offer, 0, len(ms))
	for i := range ms {
		views = append(views, Read(&ms[i]).Placement())
	}
	accept := map[string][]mesos.Offer_Operation{}
	assigned := placement.Place(requests, views, placement.Placed{})
	for k, a := range assigned {
		l := benchLaunch(k/3, k%3, a.AgentID, a.Ports[0])
		accept[a.OfferID] = append(accept[a.OfferID], l.Operations(nil)...)
	}
	return accept, len(assigned)
}

// BenchmarkMatchOffers: one OFFERS event end to end (without etcd): a busy
// scheduler with 100 offers and 100 new clusters of 3 instances, and the
// common small case, one new cluster of 3 instances on 3 offers.
func BenchmarkMatchOffers(b *testing.B) {
	for _, c := range []struct{ offers, instances int }{{100, 300}, {3, 3}} {
		b.Run(fmt.Sprintf("%doffers-%dinstances", c.offers, c.instances), func(b *testing.B) {
			ms, reqs := benchOffers(c.offers), benchRequests(c.instances)
			b.ReportAllocs()
			for b.Loop() {
				if _, n := matchOffers(ms, reqs); n != c.instances {
					b.Fatalf("placed %d of %d", n, c.instances)
				}
			}
		})
	}
}

// BenchmarkReadOffers: the first step alone, Read and Placement of 100
// offers (20 of them with an instance's reservation and volume).
func BenchmarkReadOffers(b *testing.B) {
	ms := benchOffers(100)
	b.ReportAllocs()
	for b.Loop() {
		for i := range ms {
			if p := Read(&ms[i]).Placement(); p.CPUs != 16 {
				b.Fatalf("offer %d: %v cpus", i, p.CPUs)
			}
		}
	}
}

// BenchmarkLaunchOperations: the last step alone, the RESERVE, CREATE and
// LAUNCH of one new instance, and the LAUNCH alone of one relaunched on its
// existing reservation (Missing is part of both).
func BenchmarkLaunchOperations(b *testing.B) {
	l := benchLaunch(1, 0, "a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d-S7", 31005)
	existing := mesos.Resources(offeredBack(l.Operations(nil)))
	for _, c := range []struct {
		name     string
		existing mesos.Resources
		ops      int
	}{{"new", nil, 3}, {"relaunch", existing, 1}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ops := l.Operations(c.existing); len(ops) != c.ops {
					b.Fatalf("%d operations; want %d", len(ops), c.ops)
				}
			}
		})
	}
}
