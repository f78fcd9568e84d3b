package spec

import "fmt"

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
// one of others (the stored clusters) already claims. Ports belong to the
// schedulers' hosts, which every namespace shares; a cluster of another
// namespace is not named, since the caller may not be allowed to see it.
func RouterPortConflicts(c *MySQLCluster, others []*MySQLCluster) ErrorList {
	var errs ErrorList
	for _, mine := range c.Spec.Router.Ports() {
		for _, o := range others {
			if o.Metadata.Namespace == c.Metadata.Namespace && o.Metadata.Name == c.Metadata.Name {
				continue
			}
			for _, theirs := range o.Spec.Router.Ports() {
				if theirs.Port != mine.Port {
					continue
				}
				owner := "a cluster of another namespace"
				if o.Metadata.Namespace == c.Metadata.Namespace {
					owner = fmt.Sprintf("the %s of cluster %s", theirs.Field, o.Metadata.Name)
				}
				errs = append(errs, invalidErr(mine.Field, mine.Port, fmt.Sprintf(
					"port %d is already %s; router ports are the scheduler host's and every cluster needs its own: choose another",
					mine.Port, owner)))
			}
		}
	}
	return errs
}
