package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// QuotaStore keeps the namespaces' quotas.
type QuotaStore interface {
	Quota(ctx context.Context, ns string) (*spec.ResourceQuota, error)
	SetQuota(ctx context.Context, q *spec.ResourceQuota) error
	DeleteQuota(ctx context.Context, ns string) error
}

func (s *Server) quotaRoutes() []Route {
	const path = "/api/v1/namespaces/{namespace}/quota"
	return []Route{
		{Pattern: "GET " + path, Access: AccessRead, handler: s.getQuota},
		// A team's admin must not raise its own quota.
		{Pattern: "PUT " + path, Access: AccessClusterAdmin, handler: s.putQuota},
		{Pattern: "DELETE " + path, Access: AccessClusterAdmin, handler: s.deleteQuota},
	}
}

// getQuota answers with the quota and what the namespace uses now.
func (s *Server) getQuota(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if !checkNamespace(w, ns) {
		return
	}
	q, err := s.cfg.Quotas.Quota(r.Context(), ns)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	used, _, err := s.namespaceUsage(r.Context(), ns, "")
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	amounts := used.Amounts()
	q.Used = &amounts
	writeJSON(w, http.StatusOK, q)
}

func (s *Server) putQuota(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if !checkNamespace(w, ns) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var q spec.ResourceQuota
	if err := decodeStrict(body, &q); err != nil {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
			"quota body: "+err.Error()+` (send {"hard": {"instances": N, "cpus": "8", "mem": "32Gi", "disk": "500Gi"}})`, nil)
		return
	}
	if q.Namespace != "" && q.Namespace != ns {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
			fmt.Sprintf("namespace %q in the body does not match %q in the URL", q.Namespace, ns), nil)
		return
	}
	if errs := spec.ValidateResourceQuota(&q); len(errs) > 0 {
		writeInvalidObject(w, spec.ResourceQuotaKind, ns, ns, errs)
		return
	}
	q.APIVersion, q.Kind, q.Namespace = spec.APIVersion, spec.ResourceQuotaKind, ns
	if err := s.cfg.Quotas.SetQuota(r.Context(), &q); err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("quota set", "namespace", ns, "by", identity(r).Name)
	writeJSON(w, http.StatusOK, q)
}

func (s *Server) deleteQuota(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if !checkNamespace(w, ns) {
		return
	}
	if err := s.cfg.Quotas.DeleteQuota(r.Context(), ns); err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("quota deleted", "namespace", ns, "by", identity(r).Name)
	writeJSON(w, http.StatusOK, &spec.Status{APIVersion: "v1", Kind: "Status", Status: "Success", Code: http.StatusOK,
		Message: "quota of namespace " + ns + " deleted", Details: &spec.StatusDetails{Namespace: ns}})
}

// namespaceUsage adds up what the namespace's clusters ask for, leaving out
// the cluster named except.
// It returns the revision the clusters were read at.
func (s *Server) namespaceUsage(ctx context.Context, ns, except string) (spec.Usage, int64, error) {
	clusters, rev, err := s.cfg.Store.List(ctx, ns)
	if err != nil {
		return spec.Usage{}, 0, err
	}
	used := spec.NewUsage()
	for _, c := range clusters {
		if c.Metadata.Name != except {
			used = used.Add(spec.UsageOf(c))
		}
	}
	return used, rev, nil
}

// admitQuota checks a create (current nil) or an update against the
// namespace's quota and answers 403 when it would exceed a limit it grows.
// It returns the condition that keeps the check exact until the write: no
// cluster of the namespace changed since the usage was read. A change that
// grows nothing needs neither check nor condition, so a scale-down is never
// refused nor made to retry.
func (s *Server) admitQuota(w http.ResponseWriter, r *http.Request, desired, current *spec.MySQLCluster) (*store.Unchanged, bool) {
	if s.cfg.Quotas == nil {
		return nil, true
	}
	if current != nil && !spec.UsageOf(desired).Grows(spec.UsageOf(current)) {
		return nil, true
	}
	ns := desired.Metadata.Namespace
	q, err := s.cfg.Quotas.Quota(r.Context(), ns)
	if errors.Is(err, store.ErrNotFound) {
		return nil, true
	}
	if err != nil {
		s.writeStoreError(w, err)
		return nil, false
	}
	others, rev, err := s.namespaceUsage(r.Context(), ns, desired.Metadata.Name)
	if err != nil {
		s.writeStoreError(w, err)
		return nil, false
	}
	before := others
	if current != nil {
		before = others.Add(spec.UsageOf(current))
	}
	over := q.Exceeded(before, others.Add(spec.UsageOf(desired)))
	if len(over) == 0 {
		return &store.Unchanged{Namespace: ns, Rev: rev}, true
	}
	writeStatus(w, http.StatusForbidden, spec.ReasonForbidden, fmt.Sprintf(
		"MySQLCluster %s exceeds the quota of namespace %q: %s; lower spec.replicas or spec.resources, delete a cluster, "+
			"or ask an admin of every namespace to raise it (mysosctl quota set %s)",
		quoteName(desired.Metadata.Name), ns, strings.Join(over, "; "), ns),
		&spec.StatusDetails{Name: desired.Metadata.Name, Namespace: ns})
	return nil, false
}
