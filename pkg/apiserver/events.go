package apiserver

import (
	"context"
	"net/http"
	"slices"

	"github.com/mysos-project/mysos/pkg/spec"
)

// EventStore reads the clusters' recorded events (pkg/store implements it):
// one cluster's, a namespace's when name is empty, all when ns is empty,
// oldest first.
type EventStore interface {
	ListEvents(ctx context.Context, ns, name string) ([]spec.Event, error)
}

// listEvents answers an EventList for one cluster (which must exist), one
// namespace or every namespace, depending on the route.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if (ns != "" && !checkNamespace(w, ns)) || (name != "" && !checkName(w, name)) {
		return
	}
	if s.cfg.Events == nil {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "this server keeps no events", nil)
		return
	}
	if name != "" {
		// A typo in the name must say so rather than show an empty history.
		if _, err := s.cfg.Store.Get(r.Context(), ns, name); err != nil {
			s.writeStoreError(w, err)
			return
		}
	}
	items, err := s.cfg.Events.ListEvents(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	items = slices.DeleteFunc(items, func(e spec.Event) bool { return !visible(r, e.Namespace) })
	if items == nil {
		items = []spec.Event{}
	}
	writeJSON(w, http.StatusOK, spec.EventList{APIVersion: spec.APIVersion, Kind: spec.EventListKind, Items: items})
}
