package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mysos-project/mysos/pkg/spec"
)

// Access is what a route asks of a request's bearer token.
type Access string

// Access levels, from none to the most.
const (
	// AccessPublic routes serve anonymous requests when their endpoint is in
	// Config.Anonymous, and otherwise want any valid token.
	AccessPublic Access = "public"
	// AccessLegacy routes are the original Mysos' API, which took no token
	// (the cluster password guards DELETE); served only with --legacy-api.
	AccessLegacy Access = "legacy"
	// AccessRead wants any valid token that covers the path's namespace.
	AccessRead Access = "read"
	// AccessWrite wants an admin token that covers the path's namespace;
	// reading passwords is a write in this sense.
	AccessWrite Access = "write"
	// AccessClusterAdmin wants an admin token of every namespace (managing
	// tokens and quotas).
	AccessClusterAdmin Access = "cluster-admin"
)

// Endpoints that may be served without a token (Config.Anonymous).
const (
	EndpointStatusPage = "status-page"
	EndpointHealthz    = "healthz"
	EndpointReadyz     = "readyz"
	EndpointVersion    = "version"
	EndpointMetrics    = "metrics"
)

// DefaultAnonymous are the endpoints served without a token unless the
// scheduler is told otherwise: probes, the version, metrics for Prometheus
// and the read-only status page. None of them shows a password.
var DefaultAnonymous = []string{EndpointStatusPage, EndpointHealthz, EndpointReadyz, EndpointVersion, EndpointMetrics}

// ErrUnknownToken is what an Authenticator answers for a token it does not know.
var ErrUnknownToken = errors.New("unknown bearer token")

// Authenticator maps a bearer token to the description of the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*spec.APIToken, error)
}

// HashToken is the SHA-256 under which a token is known, in hex.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// FileToken is a token defined in the scheduler's files: its SHA-256 (hex)
// and what it may do.
type FileToken struct {
	SHA256 string
	spec.APIToken
}

// staticTokens are the file tokens, known by hash so that comparing them
// leaks nothing about a token through timing.
type staticTokens map[string]spec.APIToken

func newStaticTokens(tokens []FileToken) (staticTokens, error) {
	st := staticTokens{}
	names := map[string]bool{}
	for _, ft := range tokens {
		if names[ft.Name] {
			return nil, fmt.Errorf("two tokens are named %q: give each its own name", ft.Name)
		}
		if _, dup := st[ft.SHA256]; dup {
			return nil, fmt.Errorf("tokens %q and %q are the same secret: give each its own", st[ft.SHA256].Name, ft.Name)
		}
		if errs := spec.ValidateAPIToken(&ft.APIToken); len(errs) > 0 {
			return nil, fmt.Errorf("token %q: %w", ft.Name, errs)
		}
		names[ft.Name] = true
		t := ft.APIToken
		t.Source, t.Token = "file", ""
		st[ft.SHA256] = t
	}
	return st, nil
}

// Authenticate implements Authenticator.
func (s staticTokens) Authenticate(_ context.Context, token string) (*spec.APIToken, error) {
	if t, ok := s[HashToken(token)]; ok {
		return &t, nil
	}
	return nil, ErrUnknownToken
}

// list returns the tokens by name, without secrets.
func (s staticTokens) list() []spec.APIToken {
	out := make([]spec.APIToken, 0, len(s))
	for _, t := range s {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b spec.APIToken) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s staticTokens) has(name string) bool {
	for _, t := range s {
		if t.Name == name {
			return true
		}
	}
	return false
}

// chain asks each authenticator in turn; the first that knows the token wins.
type chain []Authenticator

func (c chain) Authenticate(ctx context.Context, token string) (*spec.APIToken, error) {
	for _, a := range c {
		t, err := a.Authenticate(ctx, token)
		if errors.Is(err, ErrUnknownToken) {
			continue
		}
		return t, err
	}
	return nil, ErrUnknownToken
}

type identityKey struct{}

// identity is the token a request was authenticated with; nil for an
// anonymous request to a public endpoint.
func identity(r *http.Request) *spec.APIToken {
	t, _ := r.Context().Value(identityKey{}).(*spec.APIToken)
	return t
}

// visible reports whether the request may see objects of namespace ns:
// anonymous requests reach only public endpoints, which show everything.
func visible(r *http.Request, ns string) bool {
	t := identity(r)
	return t == nil || t.InNamespace(ns)
}

// guard wraps a route's handler with the authentication and authorization
// its access needs.
func (s *Server) guard(rt Route) http.Handler {
	access, h := rt.Access, rt.handler
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access == AccessLegacy || (access == AccessPublic && s.anonymous[rt.Endpoint]) {
			h(w, r)
			return
		}
		t, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if who, ok := r.Context().Value(requesterKey{}).(*requester); ok {
			who.name = t.Name
		}
		problem := authorize(t, access, r)
		if problem == "" && rt.AllNamespaces && !t.AllNamespaces() {
			problem = fmt.Sprintf("token %q is limited to namespaces %s, and %s shows every namespace", t.Name, strings.Join(t.Namespaces, ","), r.URL.Path)
		}
		if problem != "" {
			writeStatus(w, http.StatusForbidden, spec.ReasonForbidden, problem, nil)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, t)))
	})
}

// authenticate finds the request's token or answers 401 (503 when the
// token store is unreachable, so a client retries rather than re-logs).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*spec.APIToken, bool) {
	header := r.Header.Get("Authorization")
	token, found := strings.CutPrefix(header, "Bearer ")
	if !found || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mysos"`)
		msg := "missing bearer token: pass --token or set MYSOS_TOKEN (the scheduler wrote an admin token to its --token-file)"
		if header != "" {
			msg = `the Authorization header must be "Bearer <token>"`
		}
		writeStatus(w, http.StatusUnauthorized, spec.ReasonUnauthorized, msg, nil)
		return nil, false
	}
	t, err := s.auth.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, ErrUnknownToken):
		w.Header().Set("WWW-Authenticate", `Bearer realm="mysos", error="invalid_token"`)
		writeStatus(w, http.StatusUnauthorized, spec.ReasonUnauthorized,
			"invalid bearer token: it is unknown or was deleted; use the scheduler's --token-file or ask an admin for a token", nil)
		return nil, false
	case err != nil:
		s.log.Error("token lookup failed", "err", err)
		writeStatus(w, http.StatusServiceUnavailable, spec.ReasonServiceUnavailable,
			"cannot check the bearer token now (the token store did not answer); retry", nil)
		return nil, false
	}
	return t, true
}

// authorize returns why token t may not make request r, or "".
func authorize(t *spec.APIToken, access Access, r *http.Request) string {
	who := fmt.Sprintf("token %q (role %s", t.Name, t.Role)
	if !t.AllNamespaces() {
		who += ", namespaces " + strings.Join(t.Namespaces, ",")
	}
	who += ")"
	needsAdmin := access == AccessWrite || access == AccessClusterAdmin
	if needsAdmin && t.Role != spec.RoleAdmin {
		return fmt.Sprintf("%s may not %s %s: that needs role admin", who, r.Method, r.URL.Path)
	}
	if access == AccessClusterAdmin && !t.AllNamespaces() {
		return fmt.Sprintf("%s may not %s %s: that needs an admin token of every namespace", who, r.Method, r.URL.Path)
	}
	if ns := r.PathValue("namespace"); ns != "" && !t.InNamespace(ns) {
		return fmt.Sprintf("%s may not act in namespace %q", who, ns)
	}
	return ""
}
