package apiserver

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/mysos-project/mysos/pkg/spec"
)

// CredentialStore reads a cluster's generated passwords.
type CredentialStore interface {
	Passwords(ctx context.Context, ns, name, uid string) (map[string]string, error)
}

// CACertStore, when the CredentialStore implements it too, gives the CA
// certificates (PEM) a cluster's MySQL servers are verified with: its own
// generated CA's, or the scheduler's --mysql-ca-cert. They are public.
type CACertStore interface {
	MySQLCACert(ctx context.Context, ns, name, uid string) ([]byte, error)
}

// getCredentials answers with the passwords of the cluster's users (and,
// with ?all=true, of Mysos' own accounts), for the one admin token, and,
// when spec.tls is enabled, the CA certificate clients verify the servers
// with. Nothing else in the API carries a password.
func (s *Server) getCredentials(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) || !checkName(w, name) {
		return
	}
	if s.cfg.Credentials == nil {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "this server keeps no credentials", nil)
		return
	}
	c, err := s.cfg.Store.Get(r.Context(), ns, name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	pw, err := s.cfg.Credentials.Passwords(r.Context(), ns, name, c.Metadata.UID)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	wanted := map[string]bool{}
	for _, u := range c.Spec.Users {
		wanted[u.Name] = true
	}
	all := r.URL.Query().Get("all") == "true"
	if t := identity(r); all && !t.AllNamespaces() {
		// mysos_admin holds every privilege on the server: a team's own
		// accounts are all it needs.
		writeStatus(w, http.StatusForbidden, spec.ReasonForbidden, fmt.Sprintf(
			"token %q may read the passwords of the cluster's users but not of Mysos' own accounts (?all=true): that needs an admin token of every namespace", t.Name), nil)
		return
	}
	out := spec.Credentials{APIVersion: spec.APIVersion, Kind: spec.CredentialsKind, Cluster: name, Namespace: ns, Users: []spec.Credential{}}
	if c.Status.Endpoints != nil {
		out.Primary = c.Status.Endpoints.Primary
	}
	for _, user := range slices.Sorted(maps.Keys(pw)) {
		if wanted[user] || all {
			out.Users = append(out.Users, spec.Credential{User: user, Password: pw[user]})
		}
	}
	if cas, ok := s.cfg.Credentials.(CACertStore); ok && c.Spec.TLSEnabled() {
		// Empty until the cluster's first certificate is issued (its
		// first launch makes the CA).
		ca, err := cas.MySQLCACert(r.Context(), ns, name, c.Metadata.UID)
		if err != nil {
			s.writeStoreError(w, err)
			return
		}
		out.CACert = string(ca)
	}
	s.log.Info("credentials read", "cluster", ns+"/"+name, "all", all)
	writeJSON(w, http.StatusOK, out)
}
