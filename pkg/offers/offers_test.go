package offers

import (
	"testing"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func scalarIn(role, name string, v float64) mesos.Resource {
	r := scalar(name, v)
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
	return r
}

// TestReadSeparatesMysosReservations: unreserved resources feed placement,
// Mysos' labelled reservations are grouped by owner, and anything reserved
// without Mysos' labels (an operator's static or dynamic reservation) is
// left alone.
func TestReadSeparatesMysosReservations(t *testing.T) {
	l := Launch{Owner: Owner{Instance: "default/shop/0", ClusterUID: "u", PersistenceID: "p0"}, Role: "mysos",
		CPUs: 1, MemMiB: 512, DiskMiB: 1024, Port: 31005, ExecutorCPUs: 0.1, ExecutorMemMiB: 32}
	var ops []mesos.Offer_Operation = l.Operations(nil)
	if len(ops) != 3 || ops[0].Type != mesos.Offer_Operation_RESERVE || ops[1].Type != mesos.Offer_Operation_CREATE {
		t.Fatalf("operations on an empty agent: %v", ops)
	}
	foreign := scalarIn("mysos", "cpus", 2)
	foreign.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: proto.String("mysos")}}
	free := []mesos.Resource{scalarIn("mysos", "cpus", 3), scalarIn("mysos", "mem", 4096), scalarIn("mysos", "disk", 10000)}
	offered := append(append(free, foreign), ops[0].Reserve.Resources...)
	o := Read(&mesos.Offer{
		ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "S1"}, Hostname: "agent-1",
		Attributes: []mesos.Attribute{{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "r2"}},
			{Name: "gen", Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: 3}}},
		Resources: offered,
	})
	if o.Role != "mysos" || len(o.Reserved) != 1 {
		t.Fatalf("role %q, %d owners; want mysos and exactly Mysos' one owner", o.Role, len(o.Reserved))
	}
	p := o.Placement()
	if p.CPUs != 3 || p.MemMiB != 4096 || p.DiskMiB != 10000 || p.Attributes["rack"] != "r2" || p.Attributes["gen"] != "3" {
		t.Fatalf("placement view %+v: the reserved and foreign resources must not count as free", p)
	}
	if need := l.Missing(o.Reserved[l.Owner]); need != (Need{}) {
		t.Fatalf("after reserving everything, still missing %+v", need)
	}
	rel := Release(o.Reserved[l.Owner])
	if len(rel) != 1 || rel[0].Type != mesos.Offer_Operation_UNRESERVE {
		t.Fatalf("release of a reservation without volume: %v; want UNRESERVE alone", rel)
	}
}
