// Package offers speaks Mesos resources for Mysos: it reads an offer into
// what placement needs (the unreserved resources of Mysos' role) and Mysos'
// own reservations (grouped by the instance that owns them), and it writes
// the operations of one ACCEPT: RESERVE what an instance lacks, CREATE its
// persistent volume, LAUNCH its task on a custom executor; or DESTROY and
// UNRESERVE what nobody owns any more.
//
// Every reservation Mysos makes carries labels naming its owner, so that a
// scheduler that lost its memory can still tell its own resources apart and
// give back those of deleted instances.
package offers

import (
	"cmp"
	"slices"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/placement"
)

// Labels on every reservation Mysos makes.
const (
	LabelInstance    = "mysos.io/instance"       // "<namespace>/<cluster>/<ordinal>"
	LabelClusterUID  = "mysos.io/cluster-uid"    // the cluster's uid: names are reused, uids not
	LabelPersistence = "mysos.io/persistence-id" // the volume the reservation goes with
)

// VolumePath is where the persistent volume appears in the task's sandbox.
const VolumePath = "data"

// Owner identifies the instance, and the incarnation of its volume, that a
// reservation belongs to.
type Owner struct {
	Instance      string
	ClusterUID    string
	PersistenceID string
}

// Offer is one Mesos offer as Mysos sees it.
type Offer struct {
	Mesos *mesos.Offer
	// Role is the role the offer is allocated to.
	Role string
	// Unreserved are the resources free for anything of Role.
	Unreserved mesos.Resources
	// Reserved are Mysos' reservations in the offer, by owner.
	Reserved map[Owner]mesos.Resources
}

// Read splits an offer's resources. Resources reserved by others (static
// reservations, other frameworks' labels) are left out: Mysos never
// touches them.
func Read(o *mesos.Offer) Offer {
	out := Offer{Mesos: o, Role: o.GetAllocationInfo().GetRole(), Reserved: map[Owner]mesos.Resources{}}
	for _, r := range o.Resources {
		if out.Role == "" {
			out.Role = r.GetAllocationInfo().GetRole()
		}
		if r.IsUnreserved() {
			out.Unreserved.Add1(r)
			continue
		}
		if owner, ok := ownerOf(r); ok {
			rs := out.Reserved[owner]
			rs.Add1(r)
			out.Reserved[owner] = rs
		}
	}
	return out
}

// ownerOf reads the owner labels of the last (Mysos') reservation of r.
func ownerOf(r mesos.Resource) (Owner, bool) {
	if len(r.Reservations) == 0 || r.Reservations[len(r.Reservations)-1].GetType() != mesos.Resource_ReservationInfo_DYNAMIC {
		return Owner{}, false
	}
	var o Owner
	for _, l := range r.Reservations[len(r.Reservations)-1].GetLabels().GetLabels() {
		switch l.Key {
		case LabelInstance:
			o.Instance = l.GetValue()
		case LabelClusterUID:
			o.ClusterUID = l.GetValue()
		case LabelPersistence:
			o.PersistenceID = l.GetValue()
		}
	}
	return o, o.Instance != "" && o.PersistenceID != ""
}

// Placement is the offer as placement sees it: what is free for new
// instances.
func (o Offer) Placement() placement.Offer {
	p := placement.Offer{
		ID: o.Mesos.ID.Value, AgentID: o.Mesos.AgentID.Value, Hostname: o.Mesos.Hostname,
		Attributes: attributes(o.Mesos.Attributes),
	}
	for _, r := range o.Unreserved {
		switch r.Name {
		case "cpus":
			p.CPUs += r.GetScalar().GetValue()
		case "mem":
			p.MemMiB += r.GetScalar().GetValue()
		case "disk":
			if r.Disk == nil { // plain root disk; mount/path disks are not used yet
				p.DiskMiB += r.GetScalar().GetValue()
			}
		case "ports":
			for _, rg := range r.GetRanges().GetRange() {
				p.Ports = append(p.Ports, placement.PortRange{Begin: rg.Begin, End: rg.End})
			}
		}
	}
	slices.SortFunc(p.Ports, func(a, b placement.PortRange) int { return cmp.Compare(a.Begin, b.Begin) })
	return p
}

// attributes flattens text and scalar agent attributes for matching.
func attributes(as []mesos.Attribute) map[string]string {
	if len(as) == 0 {
		return nil
	}
	m := make(map[string]string, len(as))
	for _, a := range as {
		switch {
		case a.Text != nil:
			m[a.Name] = a.Text.GetValue()
		case a.Scalar != nil:
			m[a.Name] = formatFloat(a.Scalar.GetValue())
		}
	}
	return m
}
