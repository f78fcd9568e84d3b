package apiserver

import (
	"context"
	"maps"
	"net/http"
	"slices"

	"github.com/mysos-project/mysos/pkg/spec"
)

// CredentialStore reads a cluster's generated passwords.
type CredentialStore interface {
	Passwords(ctx context.Context, ns, name, uid string) (map[string]string, error)
}

// getCredentials answers with the passwords of the cluster's users (and,
// with ?all=true, of Mysos' own accounts), for the one admin token.
// Nothing else in the API carries a password.
func (s *Server) getCredentials(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	if !checkNamespace(w, ns) {
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
	out := spec.Credentials{APIVersion: spec.APIVersion, Kind: spec.CredentialsKind, Cluster: name, Namespace: ns, Users: []spec.Credential{}}
	if c.Status.Endpoints != nil {
		out.Primary = c.Status.Endpoints.Primary
	}
	for _, user := range slices.Sorted(maps.Keys(pw)) {
		if wanted[user] || all {
			out.Users = append(out.Users, spec.Credential{User: user, Password: pw[user]})
		}
	}
	s.log.Info("credentials read", "cluster", ns+"/"+name, "all", all)
	writeJSON(w, http.StatusOK, out)
}
