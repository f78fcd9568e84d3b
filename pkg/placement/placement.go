// Package placement decides which Mesos offer each pending MySQL instance
// goes to. Within one cluster it spreads instances over failure domains (by
// default one per host), so that losing a machine loses one replica; across
// clusters it packs densely (best fit), so that agents are used well, which
// is the point of running many databases on one Mesos cluster. It is pure:
// offers and requests in, assignments out, no Mesos or etcd calls.
package placement

import (
	"cmp"
	"slices"
)

// SpreadHostname and SpreadNone are the spread keys that are not attributes.
const (
	SpreadHostname = "hostname"
	SpreadNone     = "none"
)

// Offer is what placement needs to know of a Mesos offer: the resources
// usable by Mysos' role on one agent.
type Offer struct {
	ID         string
	AgentID    string
	Hostname   string
	Attributes map[string]string
	CPUs       float64
	MemMiB     float64
	DiskMiB    float64
	Ports      []PortRange
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Begin, End uint64 }

// Request is one instance waiting for resources.
type Request struct {
	// Cluster ("namespace/name") and Instance identify the request.
	Cluster  string
	Instance string
	CPUs     float64
	MemMiB   float64
	DiskMiB  float64
	// Ports is how many ports the instance needs.
	Ports int
	// SpreadKey is "hostname", "none" or an agent attribute name;
	// MaxPerDomain is how many instances of the cluster may share a value.
	SpreadKey    string
	MaxPerDomain int
	// Attributes an agent must carry, exactly.
	Attributes map[string]string
	// AgentID, when set, pins the request to that agent: the instance's
	// persistent volume lives there.
	AgentID string
}

// Assignment places one request on one offer.
type Assignment struct {
	Request Request
	OfferID string
	AgentID string
	// Ports are the ports taken from the offer, Request.Ports of them.
	Ports []uint64
}

// Placed counts, per cluster, the instances already running in each domain
// (keyed as Domain returns it), so new ones spread around them.
type Placed map[string]map[string]int

// Add records an instance of cluster in domain.
func (p Placed) Add(cluster, domain string) {
	if p[cluster] == nil {
		p[cluster] = map[string]int{}
	}
	p[cluster][domain]++
}

// Domain is the failure domain of an agent under spreadKey; ok is false when
// the agent lacks the attribute, and so cannot prove where it stands.
func Domain(spreadKey, hostname string, attributes map[string]string) (domain string, ok bool) {
	switch spreadKey {
	case "", SpreadHostname:
		return "hostname=" + hostname, true
	case SpreadNone:
		return "", true
	}
	v, ok := attributes[spreadKey]
	return spreadKey + "=" + v, ok
}

// Place assigns as many requests as the offers allow. Pinned requests go
// first (their volume exists on one agent only); the rest are interleaved
// across clusters so that one large cluster does not starve the others.
// Each request takes the feasible offer it fits most tightly (best fit),
// which packs clusters densely while the domain limit spreads each one.
// Requests that fit nowhere are left out; placed is updated.
func Place(requests []Request, offers []Offer, placed Placed) []Assignment {
	remaining := make([]Offer, len(offers))
	for i, o := range offers {
		remaining[i] = o
		remaining[i].Ports = slices.Clone(o.Ports)
	}
	var out []Assignment
	for _, r := range order(requests) {
		best := -1
		for i := range remaining {
			if fits(r, &remaining[i], placed) && (best < 0 || tighter(r, &remaining[i], &remaining[best])) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		out = append(out, take(r, &remaining[best], placed))
	}
	return out
}

// order puts pinned requests first, then deals the others out round-robin
// by cluster, keeping each cluster's own order.
func order(requests []Request) []Request {
	var pinned []Request
	byCluster := map[string][]Request{}
	var clusters []string
	for _, r := range requests {
		if r.AgentID != "" {
			pinned = append(pinned, r)
			continue
		}
		if _, seen := byCluster[r.Cluster]; !seen {
			clusters = append(clusters, r.Cluster)
		}
		byCluster[r.Cluster] = append(byCluster[r.Cluster], r)
	}
	out := pinned
	for round := 0; len(out) < len(requests); round++ {
		for _, c := range clusters {
			if round < len(byCluster[c]) {
				out = append(out, byCluster[c][round])
			}
		}
	}
	return out
}

func fits(r Request, o *Offer, placed Placed) bool {
	if r.AgentID != "" && r.AgentID != o.AgentID {
		return false
	}
	if o.CPUs < r.CPUs || o.MemMiB < r.MemMiB || o.DiskMiB < r.DiskMiB || freePorts(o.Ports) < uint64(r.Ports) {
		return false
	}
	for k, v := range r.Attributes {
		if o.Attributes[k] != v {
			return false
		}
	}
	domain, ok := Domain(r.SpreadKey, o.Hostname, o.Attributes)
	if !ok {
		return false
	}
	return r.SpreadKey == SpreadNone || placed[r.Cluster][domain] < max(r.MaxPerDomain, 1)
}

// tighter reports whether r leaves less room on a than on b: the sum of the
// fractions of cpus and memory left over, the two resources that strand each
// other. Ties go to the lower agent id, for determinism.
func tighter(r Request, a, b *Offer) bool {
	la := leftover(r, a)
	lb := leftover(r, b)
	if la != lb {
		return la < lb
	}
	return cmp.Less(a.AgentID+"/"+a.ID, b.AgentID+"/"+b.ID)
}

func leftover(r Request, o *Offer) float64 {
	return fraction(o.CPUs-r.CPUs, o.CPUs) + fraction(o.MemMiB-r.MemMiB, o.MemMiB)
}

func fraction(left, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return left / total
}

// take subtracts r from o and records the placement.
func take(r Request, o *Offer, placed Placed) Assignment {
	o.CPUs -= r.CPUs
	o.MemMiB -= r.MemMiB
	o.DiskMiB -= r.DiskMiB
	a := Assignment{Request: r, OfferID: o.ID, AgentID: o.AgentID}
	for range r.Ports {
		a.Ports = append(a.Ports, takePort(o))
	}
	if domain, ok := Domain(r.SpreadKey, o.Hostname, o.Attributes); ok && r.SpreadKey != SpreadNone {
		placed.Add(r.Cluster, domain)
	}
	return a
}

func freePorts(rs []PortRange) uint64 {
	var n uint64
	for _, r := range rs {
		if r.End >= r.Begin {
			n += r.End - r.Begin + 1
		}
	}
	return n
}

// takePort removes and returns the lowest free port.
func takePort(o *Offer) uint64 {
	for i := range o.Ports {
		r := &o.Ports[i]
		if r.End < r.Begin {
			continue
		}
		p := r.Begin
		r.Begin++
		return p
	}
	return 0 // unreachable: fits checked the count
}

// Take subtracts resources from o if it has them all, including port p
// when p is not 0, and reports whether it did.
func (o *Offer) Take(cpus, memMiB, diskMiB float64, p uint64) bool {
	if o.CPUs < cpus || o.MemMiB < memMiB || o.DiskMiB < diskMiB {
		return false
	}
	if p != 0 && !takeThisPort(o, p) {
		return false
	}
	o.CPUs -= cpus
	o.MemMiB -= memMiB
	o.DiskMiB -= diskMiB
	return true
}

// takeThisPort removes port p from o's free ranges, if it is free.
func takeThisPort(o *Offer, p uint64) bool {
	for i, r := range o.Ports {
		if p < r.Begin || p > r.End {
			continue
		}
		rest := []PortRange{}
		if p > r.Begin {
			rest = append(rest, PortRange{Begin: r.Begin, End: p - 1})
		}
		if p < r.End {
			rest = append(rest, PortRange{Begin: p + 1, End: r.End})
		}
		o.Ports = slices.Concat(o.Ports[:i:i], rest, o.Ports[i+1:])
		return true
	}
	return false
}
