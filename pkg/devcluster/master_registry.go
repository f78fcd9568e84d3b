package devcluster

import (
	"sort"
	"sync"
	"time"
)

// registry is the part of the master's state that Mesos persists (in the
// replicated log) and that therefore survives a master restart or failover:
// which agents were admitted, which are unreachable (and since when) and
// which were marked gone. Frameworks, tasks and offers are not in it.
type registry struct {
	mu          sync.Mutex
	admitted    map[string]bool
	unreachable map[string]time.Time
	gone        map[string]time.Time
}

func newRegistry() *registry {
	return &registry{admitted: map[string]bool{}, unreachable: map[string]time.Time{}, gone: map[string]time.Time{}}
}

func (r *registry) admit(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.admitted[id] = true
	delete(r.unreachable, id)
}

func (r *registry) markUnreachable(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.admitted, id)
	r.unreachable[id] = at
}

func (r *registry) markGone(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.admitted, id)
	delete(r.unreachable, id)
	r.gone[id] = at
}

func (r *registry) isGone(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.gone[id]
	return ok
}

// snapshot returns the admitted agent ids (sorted) and copies of the
// unreachable and gone sets.
func (r *registry) snapshot() (admitted []string, unreachable, gone map[string]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.admitted {
		admitted = append(admitted, id)
	}
	sort.Strings(admitted)
	unreachable = make(map[string]time.Time, len(r.unreachable))
	for id, t := range r.unreachable {
		unreachable[id] = t
	}
	gone = make(map[string]time.Time, len(r.gone))
	for id, t := range r.gone {
		gone[id] = t
	}
	return admitted, unreachable, gone
}
