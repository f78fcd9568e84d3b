package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RouterSpec asks the schedulers started with --router-host to route the
// cluster's clients themselves: each such scheduler listens on these ports
// of that host and forwards the read-write port to the primary and the
// read-only port to a replica within the lag bound, as mysos-router does
// (docs/router.md). Either port may be left out, not both. Ports are the
// scheduler host's, so two clusters may not share one (checked at apply).
type RouterSpec struct {
	// ReadWritePort forwards every connection to the current primary.
	ReadWritePort int32 `json:"readWritePort,omitempty"`
	// ReadOnlyPort forwards to a replica within the lag bound, or the
	// primary when none is.
	ReadOnlyPort int32 `json:"readOnlyPort,omitempty"`
}

// The ports a router may be given: no privileged ports, since the
// scheduler may run as root and a namespace's admin must not take a port
// a system service lives on.
const (
	MinRouterPort = 1024
	MaxRouterPort = 65535
)

// PortRange is the ports an operator lets clusters' routers open (the
// scheduler's --router-ports); the zero range admits every port from
// MinRouterPort to MaxRouterPort.
type PortRange struct{ Min, Max int32 }

// DefaultRouterPorts leaves room for 277 clusters with two ports each,
// starting at MySQL Router's read-write port.
var DefaultRouterPorts = PortRange{Min: 6446, Max: 6999}

// ParsePortRange reads "LOW-HIGH" (or one port).
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if !isRange {
		hi = lo
	}
	a, errA := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
	b, errB := strconv.ParseInt(strings.TrimSpace(hi), 10, 32)
	r := PortRange{Min: int32(a), Max: int32(b)}
	if errA != nil || errB != nil || r.Min > r.Max || r.Min < MinRouterPort || r.Max > MaxRouterPort {
		return PortRange{}, fmt.Errorf("port range %q: want LOW-HIGH with %d <= LOW <= HIGH <= %d, e.g. %s", s, MinRouterPort, MaxRouterPort, DefaultRouterPorts)
	}
	return r, nil
}

// Admits reports whether a router may open port p.
func (r PortRange) Admits(p int32) bool {
	if r == (PortRange{}) {
		return p >= MinRouterPort && p <= MaxRouterPort
	}
	return p >= r.Min && p <= r.Max
}

func (r PortRange) String() string {
	if r == (PortRange{}) {
		r = PortRange{Min: MinRouterPort, Max: MaxRouterPort}
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// RouterPortsOutside returns an error for each port of c's router that the
// operator's range does not admit, except those its stored version
// (current; nil on create) has already: narrowing the range must not block
// an unrelated update, such as a scale in an emergency.
func RouterPortsOutside(c, current *MySQLCluster, allowed PortRange) ErrorList {
	var errs ErrorList
	for _, p := range NewRouterPorts(c, current) {
		if !allowed.Admits(p.Port) {
			errs = append(errs, invalidErr(p.Field, p.Port, fmt.Sprintf(
				"must be within %s, the ports this Mysos lets routers open (the scheduler's --router-ports); choose one there", allowed)))
		}
	}
	return errs
}

// Ports returns the router's ports with the fields naming them, read-write
// first; a nil RouterSpec has none.
func (r *RouterSpec) Ports() []RouterPort {
	if r == nil {
		return nil
	}
	var out []RouterPort
	if r.ReadWritePort != 0 {
		out = append(out, RouterPort{Field: "spec.router.readWritePort", Port: r.ReadWritePort})
	}
	if r.ReadOnlyPort != 0 {
		out = append(out, RouterPort{Field: "spec.router.readOnlyPort", Port: r.ReadOnlyPort})
	}
	return out
}

// RouterPort is one port of a RouterSpec and the field that names it.
type RouterPort struct {
	Field string
	Port  int32
}

func validateRouter(path string, r *RouterSpec) ErrorList {
	if r == nil {
		return nil
	}
	if r.ReadWritePort == 0 && r.ReadOnlyPort == 0 {
		return ErrorList{requiredErr(path+".readWritePort",
			"a router section needs readWritePort, readOnlyPort or both, e.g. readWritePort: 6446; remove the section for no router")}
	}
	var errs ErrorList
	for _, p := range r.Ports() {
		if p.Port < MinRouterPort || p.Port > MaxRouterPort {
			errs = append(errs, invalidErr(p.Field, p.Port, fmt.Sprintf(
				"must be a port from %d to %d (ports below %d belong to system services of the scheduler's host)",
				MinRouterPort, MaxRouterPort, MinRouterPort)))
		}
	}
	if r.ReadWritePort != 0 && r.ReadWritePort == r.ReadOnlyPort {
		errs = append(errs, invalidErr(path+".readOnlyPort", r.ReadOnlyPort,
			"must differ from readWritePort: one port cannot route to both the primary and the replicas"))
	}
	return errs
}

// RouterPortConflicts returns an error for each port of c's router that
// one of others (the stored clusters) already claims, except the ports its
// stored version (current; nil on create) has already: an update that
// keeps them is no new claim.
func RouterPortConflicts(c, current *MySQLCluster, others []*MySQLCluster) ErrorList {
	var errs ErrorList
	for _, mine := range NewRouterPorts(c, current) {
		for _, o := range others {
			if o.Metadata.Namespace == c.Metadata.Namespace && o.Metadata.Name == c.Metadata.Name {
				continue
			}
			for _, theirs := range o.Spec.Router.Ports() {
				if theirs.Port == mine.Port {
					errs = append(errs, portTaken(c, mine, o.Metadata.Namespace, o.Metadata.Name+" (its "+theirs.Field+")"))
				}
			}
		}
	}
	return errs
}

// RouterPortTaken is the error for c's port that cluster ownerNS/owner
// holds (found when the claim itself failed: another apply won the race).
func RouterPortTaken(c *MySQLCluster, port int32, ownerNS, owner string) ErrorList {
	for _, p := range c.Spec.Router.Ports() {
		if p.Port == port {
			return ErrorList{portTaken(c, p, ownerNS, owner)}
		}
	}
	return ErrorList{invalidErr("spec.router", port, fmt.Sprintf("port %d is already taken by another cluster: choose another", port))}
}

// portTaken names the owner only within c's namespace: ports belong to
// the schedulers' hosts, which every namespace shares, and the caller may
// not be allowed to see another namespace's clusters.
func portTaken(c *MySQLCluster, mine RouterPort, ownerNS, owner string) *FieldError {
	who := "a cluster of another namespace"
	if ownerNS == c.Metadata.Namespace {
		who = "cluster " + owner
	}
	return invalidErr(mine.Field, mine.Port, fmt.Sprintf(
		"port %d is already taken by %s; router ports are the scheduler host's and every cluster needs its own: choose another",
		mine.Port, who))
}

// NewRouterPorts are the ports of c's router that its stored version
// (current; nil on create) does not have.
func NewRouterPorts(c, current *MySQLCluster) []RouterPort {
	var held []RouterPort
	if current != nil {
		held = current.Spec.Router.Ports()
	}
	var out []RouterPort
	for _, p := range c.Spec.Router.Ports() {
		if !slices.ContainsFunc(held, func(h RouterPort) bool { return h.Port == p.Port }) {
			out = append(out, p)
		}
	}
	return out
}
