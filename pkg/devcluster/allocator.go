package devcluster

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// The master keeps every resource in one canonical form: the
// post-reservation-refinement format (a `reservations` stack, no `role`, no
// `reservation`) and without allocation_info. With `role` unset everywhere,
// mesos-go's resource algebra behaves the same whatever its global
// CapabilityReservationRefinement says. Offers and messages to agents add
// allocation_info; offers to frameworks without RESERVATION_REFINEMENT are
// converted to the legacy format.

const (
	defaultRefuseSeconds = 5.0
	maxRefuseSeconds     = 31536000.0
)

// canonicalResource converts one resource, in either format, to the
// canonical one.
func canonicalResource(r mesos.Resource) mesos.Resource {
	c := cloneResource(&r)
	if len(c.Reservations) == 0 && c.Role != nil && *c.Role != "*" && *c.Role != "" {
		ri := mesos.Resource_ReservationInfo{Role: proto.String(*c.Role)}
		if c.Reservation != nil {
			t := mesos.Resource_ReservationInfo_DYNAMIC
			ri.Type = &t
			ri.Principal = c.Reservation.Principal
			ri.Labels = c.Reservation.Labels
		} else {
			t := mesos.Resource_ReservationInfo_STATIC
			ri.Type = &t
		}
		c.Reservations = []mesos.Resource_ReservationInfo{ri}
	}
	c.Role = nil
	c.Reservation = nil
	c.AllocationInfo = nil
	return c
}

// canonical converts and merges resources.
func canonical(rs []mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		out.Add1(canonicalResource(r))
	}
	return out
}

// legacyResource converts a canonical resource to the pre-refinement format;
// false when it has stacked reservations that format cannot express.
func legacyResource(r mesos.Resource) (mesos.Resource, bool) {
	c := cloneResource(&r)
	switch len(c.Reservations) {
	case 0:
		c.Role = proto.String("*")
	case 1:
		ri := c.Reservations[0]
		c.Role = proto.String(ri.GetRole())
		if ri.GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
			c.Reservation = &mesos.Resource_ReservationInfo{Principal: ri.Principal, Labels: ri.Labels}
		}
		c.Reservations = nil
	default:
		return c, false
	}
	return c, true
}

// allocatedTo returns copies of canonical resources carrying allocation_info.
func allocatedTo(rs []mesos.Resource, role string) []mesos.Resource {
	out := make([]mesos.Resource, 0, len(rs))
	for _, r := range rs {
		c := cloneResource(&r)
		c.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
		out = append(out, c)
	}
	return out
}

// offerFormat renders canonical resources for a framework: allocated to role,
// legacy format unless it is RESERVATION_REFINEMENT capable.
func offerFormat(rs []mesos.Resource, role string, refinement bool) []mesos.Resource {
	out := make([]mesos.Resource, 0, len(rs))
	for _, r := range allocatedTo(rs, role) {
		if !refinement {
			var ok bool
			if r, ok = legacyResource(r); !ok {
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// stripVolume removes the persistence and volume of a disk resource.
func stripVolume(r mesos.Resource) mesos.Resource {
	c := cloneResource(&r)
	if c.Disk != nil {
		c.Disk.Persistence = nil
		c.Disk.Volume = nil
		if c.Disk.Source == nil {
			c.Disk = nil
		}
	}
	return c
}

// popReservation removes the last reservation of a canonical resource.
func popReservation(r mesos.Resource) mesos.Resource {
	c := cloneResource(&r)
	if n := len(c.Reservations); n > 0 {
		c.Reservations = c.Reservations[:n-1]
	}
	if len(c.Reservations) == 0 {
		c.Reservations = nil
	}
	return c
}

func mapResources(rs []mesos.Resource, f func(mesos.Resource) mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, r := range rs {
		out.Add1(f(r))
	}
	return out
}

// containsAll reports whether have holds every resource of want, counting
// multiplicity (mesos-go's ContainsAll does not).
func containsAll(have, want []mesos.Resource) bool {
	rest := scratch(have)
	for _, w := range want {
		if w.Validate() != nil {
			return false
		}
		if w.IsEmpty() {
			continue
		}
		if !containsOne(rest, w) {
			return false
		}
		rest.Subtract1(w)
	}
	return true
}

// containsOne reports whether one resource of have holds w (valid, not
// empty).
func containsOne(have mesos.Resources, w mesos.Resource) bool {
	for i := range have {
		if have[i].Contains(w) {
			return true
		}
	}
	return false
}

// resMinus subtracts what is contained and ignores the rest.
func resMinus(have []mesos.Resource, take []mesos.Resource) mesos.Resources {
	rest := scratch(have)
	for _, w := range take {
		if w.Validate() == nil && !w.IsEmpty() && containsOne(rest, w) {
			rest.Subtract1(w)
		}
	}
	return rest
}

// plus adds resources.
func resPlus(have []mesos.Resource, add []mesos.Resource) mesos.Resources {
	out := scratch(have)
	for _, r := range add {
		out.Add1(r)
	}
	return out
}

// scratch is a new slice of rs's resources that shares the messages they
// point to (scalars, ranges, reservations, disk info). The dev cluster
// treats those as immutable: mesos-go's arithmetic is copy-on-write
// (Subtract and Add replace a resource's Scalar, Ranges or Set, never change
// one in place; Add1 clones what it appends), and code that changes a
// resource's nested messages clones it first (cloneResource). Deep copies
// through gogo/protobuf's reflection on every subtraction made the
// allocator's rounds and the launch of 3,000 tasks CPU-bound
// (docs/benchmarks.md). What crosses from master to agent is still cloned.
func scratch(rs []mesos.Resource) mesos.Resources {
	return append(mesos.Resources(nil), rs...)
}

// cloneResources deep-copies resources through their generated protobuf
// code (Marshal, Unmarshal), several times faster than proto.Clone.
func cloneResources(rs []mesos.Resource) mesos.Resources {
	if rs == nil {
		return nil
	}
	out := make(mesos.Resources, len(rs))
	for i := range rs {
		out[i] = cloneResource(&rs[i])
	}
	return out
}

func cloneResource(r *mesos.Resource) mesos.Resource {
	var c mesos.Resource
	b, err := r.Marshal()
	if err == nil {
		err = c.Unmarshal(b)
	}
	if err != nil { // cannot happen for a message that was decoded
		return *proto.Clone(r).(*mesos.Resource)
	}
	return c
}

// isCheckpointed: dynamic reservations and persistent volumes are what an
// agent checkpoints.
func isCheckpointed(r mesos.Resource) bool {
	if r.GetDisk().GetPersistence() != nil {
		return true
	}
	for _, ri := range r.Reservations {
		if ri.GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
			return true
		}
	}
	return false
}

// applyCheckpointed computes an agent's total from its static resources and
// its checkpointed ones: each checkpointed resource replaces its plain
// equivalent.
func applyCheckpointed(static, checkpointed []mesos.Resource) mesos.Resources {
	total := canonical(static)
	for _, c := range canonical(checkpointed) {
		plain := stripVolume(c)
		for len(plain.Reservations) > 0 && plain.Reservations[len(plain.Reservations)-1].GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
			plain = popReservation(plain)
		}
		total = resMinus(total, []mesos.Resource{plain})
		total.Add1(c)
	}
	return total
}

// formatResources renders resources roughly the way Mesos prints them in
// messages: name(reservations, allocated: role):value; ...
func formatResources(rs []mesos.Resource) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		var attrs []string
		if len(r.Reservations) > 0 {
			var rr []string
			for _, ri := range r.Reservations {
				s := "(" + ri.GetType().String() + "," + ri.GetRole()
				if ri.Principal != nil {
					s += "," + ri.GetPrincipal()
				}
				rr = append(rr, s+")")
			}
			attrs = append(attrs, "reservations: ["+strings.Join(rr, ",")+"]")
		}
		if r.AllocationInfo != nil {
			attrs = append(attrs, "allocated: "+r.AllocationInfo.GetRole())
		}
		name := r.Name
		if len(attrs) > 0 {
			name += "(" + strings.Join(attrs, ", ") + ")"
		}
		if p := r.GetDisk().GetPersistence(); p != nil {
			name += "[" + p.ID
			if v := r.GetDisk().GetVolume(); v != nil {
				name += ":" + v.ContainerPath
			}
			name += "]"
		}
		var val string
		switch r.GetType() {
		case mesos.SCALAR:
			val = strconv.FormatFloat(r.GetScalar().GetValue(), 'f', -1, 64)
		case mesos.RANGES:
			var rg []string
			for _, x := range r.GetRanges().GetRange() {
				rg = append(rg, fmt.Sprintf("%d-%d", x.Begin, x.End))
			}
			val = "[" + strings.Join(rg, ", ") + "]"
		case mesos.SET:
			val = "{" + strings.Join(r.GetSet().GetItem(), ", ") + "}"
		}
		parts = append(parts, name+":"+val)
	}
	return strings.Join(parts, "; ")
}

// offerFilter refuses an agent's resources to a framework role until expiry:
// an offer is filtered when its resources are all contained in the refused
// ones, so freshly freed resources still come through.
type offerFilter struct {
	agentID   string
	role      string
	resources mesos.Resources
	expires   time.Time
}

// refuseDuration interprets Filters.refuse_seconds as Mesos does.
func refuseDuration(f *mesos.Filters) time.Duration {
	secs := defaultRefuseSeconds
	if f != nil && f.RefuseSeconds != nil {
		secs = *f.RefuseSeconds
		if secs < 0 {
			secs = defaultRefuseSeconds
		}
		if secs > maxRefuseSeconds {
			secs = maxRefuseSeconds
		}
	}
	return time.Duration(secs * float64(time.Second))
}

// addFilter records a decline of resources on an agent. Caller holds m.mu.
func (m *Master) addFilter(fw *mframework, agentID, role string, rs mesos.Resources, f *mesos.Filters) {
	d := refuseDuration(f)
	if d <= 0 || len(rs) == 0 {
		return
	}
	fw.filters = append(fw.filters, &offerFilter{agentID: agentID, role: role, resources: rs.Clone(), expires: time.Now().Add(d)})
}

func (fw *mframework) filtered(agentID, role string, rs mesos.Resources, now time.Time) bool {
	live := fw.filters[:0]
	hit := false
	for _, f := range fw.filters {
		if now.After(f.expires) {
			continue
		}
		live = append(live, f)
		if f.agentID == agentID && f.role == role && containsAll(f.resources, rs) {
			hit = true
		}
	}
	fw.filters = live
	return hit
}

// Allocation accounting. Each agent keeps the sum of what its counted
// tasks (neither terminal nor unreachable), its executors and its
// outstanding offers use (magent.used), updated where they are added and
// removed (allocAdd, allocSub), so an allocation round costs O(agents +
// frameworks) instead of walking every task for every agent. The sum is
// recomputed from scratch when an agent registers or re-registers.
//
// free = total - used gives what subtracting each item in turn gives
// (freeResourcesSlow) as long as used is contained in total and is the exact
// multiset sum of the items. Ranges and sets lose multiplicity when added
// (two items holding the same port add up to one port), so an item that
// overlaps what is already counted marks the agent inexact; an inexact
// agent, or one whose used is not contained in its total (an agent
// reporting more than it has), falls back to the item-by-item computation.

// taskCounted reports whether a task's resources count as allocated.
func taskCounted(t *mtask) bool {
	return !isTerminal(t.state()) && t.state() != mesos.TASK_UNREACHABLE
}

// allocAdd counts rs as allocated on the agent (if it is registered).
// Caller holds m.mu.
func (m *Master) allocAdd(agentID string, rs mesos.Resources) {
	if a := m.agents[agentID]; a != nil {
		a.addUsed(rs)
	}
}

// allocSub stops counting rs as allocated on the agent. Caller holds m.mu.
func (m *Master) allocSub(agentID string, rs mesos.Resources) {
	if a := m.agents[agentID]; a != nil {
		a.subUsed(rs)
	}
}

func (a *magent) addUsed(rs mesos.Resources) {
	for _, r := range rs {
		if r.Validate() != nil || r.IsEmpty() {
			continue
		}
		if !a.inexact && overlaps(a.used, r) {
			// Adding then subtracting would not give used back.
			a.inexact = true
		}
		a.used.Add1(r)
	}
}

// overlaps reports whether adding r to rs would merge ranges or set items
// rs already has: the resource r joins (the first it is addable to) shares a
// port, say. Scalars never overlap.
func overlaps(rs mesos.Resources, r mesos.Resource) bool {
	for i := range rs {
		if !rs[i].Addable(r) {
			continue
		}
		switch r.GetType() {
		case mesos.RANGES:
			for _, x := range rs[i].GetRanges().GetRange() {
				for _, y := range r.GetRanges().GetRange() {
					if x.Begin <= y.End && y.Begin <= x.End {
						return true
					}
				}
			}
		case mesos.SET:
			items := map[string]bool{}
			for _, x := range rs[i].GetSet().GetItem() {
				items[x] = true
			}
			for _, y := range r.GetSet().GetItem() {
				if items[y] {
					return true
				}
			}
		}
		return false
	}
	return false
}

func (a *magent) subUsed(rs mesos.Resources) {
	for _, r := range rs {
		if r.Validate() != nil || r.IsEmpty() {
			continue
		}
		if !containsAll(a.used, []mesos.Resource{r}) {
			a.inexact = true
			continue
		}
		a.used.Subtract1(r)
	}
}

// resEqual compares resources as multisets.
func resEqual(x, y []mesos.Resource) bool {
	return containsAll(x, y) && containsAll(y, x)
}

// allocItems calls f with the resources of every task, executor and offer
// that counts against agent id. Caller holds m.mu.
func (m *Master) allocItems(id string, f func(mesos.Resources)) {
	for _, fw := range m.frameworks {
		for _, t := range fw.tasks {
			if t.agentID == id && taskCounted(t) {
				f(t.resources)
			}
		}
		for _, e := range fw.executors[id] {
			f(e.resources)
		}
	}
	for _, o := range m.offers {
		if o.agentID == id {
			f(o.resources)
		}
	}
}

// recomputeAllocated rebuilds an agent's allocated sum from scratch: O(all
// tasks), for registration and re-registration. Caller holds m.mu.
func (m *Master) recomputeAllocated(a *magent) {
	a.used, a.inexact = nil, false
	m.allocItems(a.id, a.addUsed)
}

// freeResources is what an agent has that no task, executor or offer uses.
// Caller holds m.mu.
func (m *Master) freeResources(a *magent) mesos.Resources {
	if a.inexact || !containsAll(a.total, a.used) {
		return m.freeResourcesSlow(a)
	}
	return resMinus(a.total, a.used)
}

// freeResourcesSlow subtracts every task, executor and offer of the agent
// in turn. Caller holds m.mu.
func (m *Master) freeResourcesSlow(a *magent) mesos.Resources {
	free := cloneResources(a.total)
	m.allocItems(a.id, func(rs mesos.Resources) { free = resMinus(free, rs) })
	return free
}

// checkAllocation verifies the incremental accounting against a
// recomputation from scratch: for every agent the allocated sum and the
// free resources. Caller holds m.mu.
func (m *Master) checkAllocation() error {
	ids := slices.Sorted(maps.Keys(m.agents))
	for _, id := range ids {
		a := m.agents[id]
		fresh := &magent{id: id}
		m.allocItems(id, fresh.addUsed)
		if fresh.inexact != a.inexact {
			return fmt.Errorf("agent %s: inexact %v, recomputed %v", id, a.inexact, fresh.inexact)
		}
		if !a.inexact && !resEqual(a.used, fresh.used) {
			return fmt.Errorf("agent %s: allocated %s, recomputed %s", id, formatResources(a.used), formatResources(fresh.used))
		}
		if got, want := m.freeResources(a), m.freeResourcesSlow(a); !resEqual(got, want) {
			return fmt.Errorf("agent %s: free %s, recomputed %s", id, formatResources(got), formatResources(want))
		}
	}
	return nil
}

// allocatable selects what of free a role may be offered.
func allocatable(free mesos.Resources, role string, refinement bool) mesos.Resources {
	var out mesos.Resources
	for i := range free {
		r := free[i]
		if !r.IsAllocatableTo(role) {
			continue
		}
		if !refinement && len(r.Reservations) > 1 {
			continue
		}
		out = append(out, cloneResource(&r))
	}
	return out
}

func hasGPUs(rs mesos.Resources) bool {
	for _, r := range rs {
		if r.Name == "gpus" && !r.IsEmpty() {
			return true
		}
	}
	return false
}

// allocate offers each agent's free resources to one connected framework,
// round-robin, honouring suppression and decline filters.
func (m *Master) allocate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	now := time.Now()
	m.expireOffers(now)
	var fws []*mframework
	for _, fw := range m.frameworks {
		if fw.stream != nil {
			fws = append(fws, fw)
		}
	}
	if len(fws) == 0 {
		return
	}
	sort.Slice(fws, func(i, j int) bool { return fws[i].id < fws[j].id })
	agentIDs := slices.Sorted(maps.Keys(m.agents))
	batches := map[*mframework][]mesos.Offer{}
	for i, aid := range agentIDs {
		a := m.agents[aid]
		free := m.freeResources(a)
		if len(free) == 0 {
			continue
		}
		for k := 0; k < len(fws); k++ {
			fw := fws[(m.rr+i+k)%len(fws)]
			if o := m.tryOffer(fw, a, free, now); o != nil {
				batches[fw] = append(batches[fw], *o)
				break
			}
		}
	}
	m.rr++
	for _, fw := range fws {
		if offers := batches[fw]; len(offers) > 0 {
			fw.send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: offers}})
		}
	}
}

// tryOffer makes an offer of a's free resources to fw if one of its roles
// may have some. Caller holds m.mu.
func (m *Master) tryOffer(fw *mframework, a *magent, free mesos.Resources, now time.Time) *mesos.Offer {
	if hasGPUs(a.total) && !fw.caps[mesos.FrameworkInfo_Capability_GPU_RESOURCES] {
		return nil
	}
	refinement := fw.caps[mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT]
	for _, role := range fw.roles {
		if fw.suppressed[role] {
			continue
		}
		rs := allocatable(free, role, refinement)
		if len(rs) == 0 || fw.filtered(a.id, role, rs, now) {
			continue
		}
		id := fmt.Sprintf("%s-O%d", m.id, m.nextOffer)
		m.nextOffer++
		m.offers[id] = &moffer{id: id, fw: fw, agentID: a.id, role: role, resources: rs, created: now}
		m.allocAdd(a.id, rs)
		o := mesos.Offer{
			ID:             mesos.OfferID{Value: id},
			FrameworkID:    mesos.FrameworkID{Value: fw.id},
			AgentID:        mesos.AgentID{Value: a.id},
			Hostname:       a.info.Hostname,
			URL:            a.url(),
			Resources:      offerFormat(rs, role, refinement),
			Attributes:     a.info.Attributes,
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: proto.String(role)},
		}
		if !fw.caps[mesos.FrameworkInfo_Capability_MULTI_ROLE] {
			stripAllocationInfo(&o)
		}
		execIDs := slices.Sorted(maps.Keys(fw.executors[a.id]))
		for _, eid := range execIDs {
			o.ExecutorIDs = append(o.ExecutorIDs, mesos.ExecutorID{Value: eid})
		}
		return &o
	}
	return nil
}

// stripAllocationInfo removes allocation_info from an offer and its
// resources, as Mesos does for frameworks that are not MULTI_ROLE capable
// (MESOS-8237): they compare resources whole and would find offered ones
// never equal to what they ask for.
func stripAllocationInfo(o *mesos.Offer) {
	o.AllocationInfo = nil
	for i := range o.Resources {
		o.Resources[i].AllocationInfo = nil
	}
}

// removeOffer discards an offer; with rescind, the framework is told.
// Caller holds m.mu.
func (m *Master) removeOffer(o *moffer, rescind bool) {
	if m.offers[o.id] == o {
		m.allocSub(o.agentID, o.resources)
	}
	delete(m.offers, o.id)
	if rescind {
		o.fw.send(&scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: o.id}}})
	}
}

// withdrawOffers discards a framework's outstanding offers without RESCIND
// (on disconnection, failover and removal). Caller holds m.mu.
func (m *Master) withdrawOffers(fw *mframework) {
	for _, o := range m.offers {
		if o.fw == fw {
			m.removeOffer(o, false)
		}
	}
}

// decline handles DECLINE (and an ACCEPT without operations).
func (m *Master) decline(fw *mframework, ids []mesos.OfferID, f *mesos.Filters) {
	for _, id := range ids {
		o := m.offers[id.Value]
		if o == nil || o.fw != fw {
			continue
		}
		m.removeOffer(o, false)
		m.addFilter(fw, o.agentID, o.role, o.resources, f)
	}
}

// revive unsuppresses roles and clears their filters; no roles means all.
func (m *Master) revive(fw *mframework, roles []string) {
	if len(roles) == 0 {
		roles = fw.roles
	}
	set := map[string]bool{}
	for _, r := range roles {
		set[r] = true
		delete(fw.suppressed, r)
	}
	live := fw.filters[:0]
	for _, f := range fw.filters {
		if !set[f.role] {
			live = append(live, f)
		}
	}
	fw.filters = live
}

func (m *Master) suppress(fw *mframework, roles []string) {
	if len(roles) == 0 {
		roles = fw.roles
	}
	for _, r := range roles {
		fw.suppressed[r] = true
	}
}
