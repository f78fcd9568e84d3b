package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if ns != "" && !checkNamespace(w, ns) {
		return
	}
	sel, err := spec.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, "labelSelector: "+err.Error(), nil)
		return
	}
	items, rev, err := s.cfg.Store.List(r.Context(), ns)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	list := spec.MySQLClusterList{APIVersion: spec.APIVersion, Kind: spec.ListKind, Items: []*spec.MySQLCluster{}}
	list.Metadata.ResourceVersion = fmt.Sprint(rev)
	for _, c := range items {
		if sel.Matches(c.Metadata.Labels) && visible(r, c.Metadata.Namespace) {
			list.Items = append(list.Items, c)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if !checkNamespace(w, ns) {
		return
	}
	c, ok := s.readCluster(w, r, ns, "")
	if !ok {
		return
	}
	// Finalizers are the scheduler's, like the rest of what the store
	// assigns on create: one taken from the body would hold the deletion
	// of the cluster forever.
	c.Metadata.Finalizers = nil
	if e := legacyAnnotationChange(nil, c); e != nil {
		writeInvalid(w, c, spec.ErrorList{e})
		return
	}
	if errs := s.checkRestore(r.Context(), c); len(errs) > 0 {
		writeInvalid(w, c, errs)
		return
	}
	var created *spec.MySQLCluster
	if !s.admitAndWrite(w, r, c, nil, func(conds []store.Unchanged) (err error) {
		created, err = s.cfg.Store.Create(r.Context(), c, conds...)
		return err
	}) {
		return
	}
	if isDryRun(r) {
		c.Metadata.Generation = 1
		writeJSON(w, http.StatusOK, c)
		return
	}
	s.log.Info("cluster created", "cluster", created.Key(), "uid", created.Metadata.UID)
	writeJSON(w, http.StatusCreated, created)
}

func (s *Server) updateCluster(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return
	}
	desired, ok := s.readCluster(w, r, ns, name)
	if !ok {
		return
	}
	current, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	// The client's resourceVersion, when given, is a precondition; without
	// one the update applies to what was just read.
	expectedRV := desired.Metadata.ResourceVersion
	if expectedRV == "" {
		expectedRV = current.Metadata.ResourceVersion
	}
	errs := spec.ValidateUpdate(current, desired)
	if e := legacyAnnotationChange(current, desired); e != nil {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		writeInvalid(w, desired, errs)
		return
	}
	var updated *spec.MySQLCluster
	var changed bool
	if !s.admitAndWrite(w, r, desired, current, func(conds []store.Unchanged) (err error) {
		updated, changed, err = s.cfg.Store.Update(r.Context(), desired, expectedRV, conds...)
		return err
	}) {
		return
	}
	if isDryRun(r) {
		next, _ := spec.WithUserFields(current, desired)
		writeJSON(w, http.StatusOK, next)
		return
	}
	if changed {
		s.log.Info("cluster updated", "cluster", updated.Key(), "generation", updated.Metadata.Generation)
	}
	writeJSON(w, http.StatusOK, updated)
}

func (s *Server) deleteCluster(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return
	}
	if isDryRun(r) {
		c, err := s.cfg.Store.Get(r.Context(), ns, name)
		if err != nil {
			s.writeStoreError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
		return
	}
	c, deleted, err := s.cfg.Store.Delete(r.Context(), ns, name, r.URL.Query().Get("resourceVersion"))
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("cluster deletion requested", "cluster", c.Key(), "deleted", deleted)
	code := http.StatusOK
	if !deleted {
		// Finalizers remain: the scheduler finishes the deletion later.
		code = http.StatusAccepted
	}
	writeJSON(w, code, c)
}

// readCluster reads, decodes, defaults and validates the request body. name
// is the name from the URL, or "" on create.
func (s *Server) readCluster(w http.ResponseWriter, r *http.Request, ns, name string) (*spec.MySQLCluster, bool) {
	if !acceptableContentType(r.Header.Get("Content-Type")) {
		writeStatus(w, http.StatusUnsupportedMediaType, spec.ReasonUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Type %q: send application/json or application/yaml", r.Header.Get("Content-Type")), nil)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeStatus(w, http.StatusRequestEntityTooLarge, spec.ReasonTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes), nil)
		return nil, false
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, "read request body: "+err.Error(), nil)
		return nil, false
	}
	c, err := spec.Decode(body)
	if err != nil {
		// Report the invalid values of the fields that did decode too, so
		// one answer names every problem.
		if _, all := spec.ParseOne(body); all != nil {
			err = all
		}
		writeDecodeError(w, err)
		return nil, false
	}
	if errs := matchURL(c, ns, name); len(errs) > 0 {
		writeInvalid(w, c, errs)
		return nil, false
	}
	c.Metadata.Namespace = ns
	spec.SetDefaults(c)
	if errs := spec.Validate(c); len(errs) > 0 {
		writeInvalid(w, c, errs)
		return nil, false
	}
	return c, true
}

// matchURL checks that the body names the object the URL names.
func matchURL(c *spec.MySQLCluster, ns, name string) spec.ErrorList {
	var errs spec.ErrorList
	if c.Metadata.Namespace != "" && c.Metadata.Namespace != ns {
		errs = append(errs, &spec.FieldError{Field: "metadata.namespace", Type: spec.ErrorTypeInvalid, Value: spec.QuoteValue(c.Metadata.Namespace),
			Detail: fmt.Sprintf("does not match the namespace in the URL (%q); leave it empty or make them equal", ns)})
	}
	if name != "" && c.Metadata.Name != name {
		errs = append(errs, &spec.FieldError{Field: "metadata.name", Type: spec.ErrorTypeInvalid, Value: spec.QuoteValue(c.Metadata.Name),
			Detail: fmt.Sprintf("does not match the name in the URL (%q); a cluster cannot be renamed", name)})
	}
	return errs
}

func checkNamespace(w http.ResponseWriter, ns string) bool {
	if spec.IsDNSLabel(ns) {
		return true
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
		fmt.Sprintf("namespace %s is not a valid name: use lowercase letters, digits and '-'", quoteName(ns)), nil)
	return false
}

// checkName refuses a cluster name in the URL that no cluster can have, so
// that it reaches neither the store's keys nor a backup destination's paths.
func checkName(w http.ResponseWriter, name string) bool {
	if len(name) <= spec.MaxNameLength && spec.IsDNSLabel(name) {
		return true
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
		fmt.Sprintf("cluster name %s is not a valid name: use at most %d lowercase letters, digits and '-', starting and ending with a letter or digit",
			quoteName(name), spec.MaxNameLength), nil)
	return false
}

// legacyAnnotationChange refuses a request that sets the legacy API's user
// annotation or changes it (current is nil on create): the annotation names
// the account whose password deletes the cluster through the legacy API,
// without a token, so only the legacy API sets it. Removing it is allowed.
func legacyAnnotationChange(current, desired *spec.MySQLCluster) *spec.FieldError {
	want, set := desired.Metadata.Annotations[LegacyUserAnnotation]
	if !set {
		return nil
	}
	detail := "only the legacy API sets it: it names the account whose password deletes the cluster without a token; remove it"
	if current != nil {
		if had, ok := current.Metadata.Annotations[LegacyUserAnnotation]; ok {
			if had == want {
				return nil
			}
			detail = fmt.Sprintf("only the legacy API sets it: it names the account whose password deletes the cluster without a token; "+
				"keep it as stored (%q) or remove it", had)
		}
	}
	return &spec.FieldError{Field: "metadata.annotations[" + LegacyUserAnnotation + "]", Type: spec.ErrorTypeForbidden,
		Value: strconv.Quote(want), Detail: detail}
}

func acceptableContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/yaml", "application/x-yaml", "text/yaml":
		return true
	}
	return false
}

func isDryRun(r *http.Request) bool {
	return strings.EqualFold(r.URL.Query().Get("dryRun"), "All")
}

// admitAndWrite runs the checks that depend on other clusters and then
// write (not for a dry run), again when the write lost a race with another
// apply (store.ErrRaced): each lost race means another write committed,
// so it goes on, with jittered backoff, for up to admitRetryBudget. On a
// refusal or an error it has answered the request and returns false.
func (s *Server) admitAndWrite(w http.ResponseWriter, r *http.Request, desired, current *spec.MySQLCluster,
	write func(conds []store.Unchanged) error) bool {
	deadline := time.Now().Add(admitRetryBudget)
	backoff := time.Millisecond
	for {
		conds, ok := s.admit(w, r, desired, current)
		if !ok {
			return false
		}
		if isDryRun(r) {
			return true
		}
		err := write(conds)
		var taken *store.PortTakenError
		switch {
		case err == nil:
			return true
		case errors.As(err, &taken):
			// Another apply claimed the port after the check read it.
			writeInvalid(w, desired, spec.RouterPortTaken(desired, taken.Port, taken.Namespace, taken.Owner))
			return false
		case errors.Is(err, store.ErrRaced) && time.Now().Add(backoff).Before(deadline):
			s.log.Debug("an apply raced another; checking again", "cluster", desired.Key(), "err", err)
			if !sleepCtx(r.Context(), backoff/2+rand.N(backoff)) {
				return false // the client went away: nobody to answer
			}
			backoff = min(2*backoff, 100*time.Millisecond)
		default:
			s.writeStoreError(w, err)
			return false
		}
	}
}

// admitRetryBudget bounds how long an apply that keeps losing races with
// others (store.ErrRaced) is checked and written again before 409; it stays
// well within the scheduler's graceful shutdown (10 s).
var admitRetryBudget = 5 * time.Second

// sleepCtx waits d unless ctx ends first; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// admit runs the checks that depend on other clusters (router ports, the
// namespace's quota) and returns the conditions that keep them true until
// the write (the quota's: router ports are claimed by the write itself):
// without them, two applies racing could each pass a check that both
// together fail. On a refusal it has answered the request.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, desired, current *spec.MySQLCluster) ([]store.Unchanged, bool) {
	if !s.admitRouterPorts(w, r, desired, current) {
		return nil, false
	}
	cond, ok := s.admitQuota(w, r, desired, current)
	if !ok || cond == nil {
		return nil, ok
	}
	return []store.Unchanged{*cond}, true
}

// admitRouterPorts refuses a cluster whose spec.router names a new port
// outside the operator's --router-ports or one another cluster already has
// (400 Invalid, naming the field). It needs no condition: the store claims
// each port in the write itself (store.PortTakenError when another apply
// took it meanwhile).
func (s *Server) admitRouterPorts(w http.ResponseWriter, r *http.Request, desired, current *spec.MySQLCluster) bool {
	if len(spec.NewRouterPorts(desired, current)) == 0 {
		return true // no new port: nothing to check, nothing another apply could take
	}
	if errs := spec.RouterPortsOutside(desired, current, s.cfg.RouterPorts); len(errs) > 0 {
		writeInvalid(w, desired, errs)
		return false
	}
	all, _, err := s.cfg.Store.List(r.Context(), "")
	if err != nil {
		s.writeStoreError(w, err)
		return false
	}
	if errs := spec.RouterPortConflicts(desired, current, all); len(errs) > 0 {
		writeInvalid(w, desired, errs)
		return false
	}
	return true
}
