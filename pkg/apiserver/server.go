// Package apiserver serves Mysos' versioned REST API: MySQLCluster objects
// under /api/v1, plus /healthz, /readyz and /version. It validates and
// defaults every object before it reaches the store, and answers errors with
// Kubernetes-style Status bodies that name each bad field.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// MaxBodyBytes is the largest request body accepted; bigger ones get 413.
// A cluster spec is a few KiB; a megabyte leaves room for annotations.
const MaxBodyBytes = 1 << 20

// ClusterStore is what the API needs from storage (pkg/store implements it).
type ClusterStore interface {
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
	List(ctx context.Context, ns string) ([]*spec.MySQLCluster, int64, error)
	Create(ctx context.Context, c *spec.MySQLCluster, conds ...store.Unchanged) (*spec.MySQLCluster, error)
	Update(ctx context.Context, c *spec.MySQLCluster, expectedRV string, conds ...store.Unchanged) (*spec.MySQLCluster, bool, error)
	Delete(ctx context.Context, ns, name, expectedRV string) (*spec.MySQLCluster, bool, error)
}

// Check is one readiness check: nil means healthy.
type Check struct {
	Name string
	// Required checks make /readyz fail; informational ones only report.
	Required bool
	Run      func(ctx context.Context) error
}

// Config wires a Server.
type Config struct {
	Store ClusterStore
	// Credentials, when set, serves the clusters' generated passwords.
	Credentials CredentialStore
	// Status, when set, lets the API start switchovers and acknowledge
	// failovers by writing status.operation and status.lastFailover.
	Status StatusStore
	// Events, when set, serves the clusters' recorded events.
	Events EventStore
	// Quotas, when set, keeps namespace quotas and enforces them.
	Quotas QuotaStore
	// RouterPorts are the ports spec.router may name (the zero range:
	// every port validation admits).
	RouterPorts spec.PortRange
	// Backups, when set, serves backups and checks spec.restore.
	Backups BackupService
	// Legacy, when set, serves the original Mysos' POST and DELETE
	// /clusters/<name> (no bearer token; see legacy.go).
	Legacy LegacyStore
	// ExternalURL is this API's base URL as clients reach it.
	ExternalURL string
	// Token, when set, is an admin token of every namespace named "admin"
	// (the scheduler's --token-file); FileTokens are more from
	// --tokens-file, and Tokens, when set, keeps tokens created through
	// the API (in etcd). Requests present them as "Authorization: Bearer ...".
	Token      string
	FileTokens []FileToken
	Tokens     TokenStore
	// Anonymous names the public endpoints served without a token; nil
	// means DefaultAnonymous, empty means none.
	Anonymous []string
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	Checks  []Check
	Version string
	Logger  *slog.Logger
	// RequestTimeout bounds each request's work, storage calls included.
	RequestTimeout time.Duration
}

// Server is the HTTP handler of the API.
type Server struct {
	cfg       Config
	mux       *http.ServeMux
	log       *slog.Logger
	routes    []Route
	files     staticTokens
	auth      Authenticator
	anonymous map[string]bool
}

// New builds the API handler.
func New(cfg Config) (*Server, error) {
	files := cfg.FileTokens
	if cfg.Token != "" {
		files = append(slices.Clone(files), FileToken{SHA256: HashToken(cfg.Token),
			APIToken: spec.APIToken{Name: AdminTokenName, Role: spec.RoleAdmin}})
	}
	static, err := newStaticTokens(files)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	if len(static) == 0 && cfg.Tokens == nil {
		return nil, errors.New("apiserver: a bearer token is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	anonymous := cfg.Anonymous
	if anonymous == nil {
		anonymous = DefaultAnonymous
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, files: static, auth: chain{static}, anonymous: map[string]bool{}}
	if cfg.Tokens != nil {
		s.auth = chain{static, storedTokens{cfg.Tokens}}
	}
	for _, e := range anonymous {
		if !slices.Contains(DefaultAnonymous, e) {
			return nil, fmt.Errorf("apiserver: %q is not an endpoint that can be public: choose from %s", e, strings.Join(DefaultAnonymous, ", "))
		}
		s.anonymous[e] = true
	}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Pattern, s.guard(rt))
	}
	return s, nil
}

// AdminTokenName is the name of the token Config.Token defines.
const AdminTokenName = "admin"

// Route is one entry of the API's route table: every path the server
// answers, with the access it needs.
type Route struct {
	// Pattern is a net/http pattern, "METHOD /path/{wildcard}".
	Pattern string
	Access  Access
	// Endpoint names a public route for Config.Anonymous.
	Endpoint string
	// AllNamespaces routes show every namespace at once (metrics): when
	// they want a token, it must cover every namespace.
	AllNamespaces bool
	handler       http.HandlerFunc
}

// Routes returns the route table, for tests that walk every endpoint.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

func (s *Server) routeTable() []Route {
	const ns, cluster = "/api/v1/namespaces/{namespace}", "/api/v1/namespaces/{namespace}/clusters/{name}"
	rt := []Route{
		{Pattern: "GET /{$}", Access: AccessPublic, Endpoint: EndpointStatusPage, handler: s.statusPageHandler},
		{Pattern: "GET /healthz", Access: AccessPublic, Endpoint: EndpointHealthz, handler: s.healthz},
		{Pattern: "GET /readyz", Access: AccessPublic, Endpoint: EndpointReadyz, handler: s.readyz},
		{Pattern: "GET /version", Access: AccessPublic, Endpoint: EndpointVersion, handler: s.version},

		{Pattern: "GET /api/v1/whoami", Access: AccessRead, handler: s.whoami},
		{Pattern: "GET /api/v1/clusters", Access: AccessRead, handler: s.listClusters},
		{Pattern: "GET " + ns + "/clusters", Access: AccessRead, handler: s.listClusters},
		{Pattern: "POST " + ns + "/clusters", Access: AccessWrite, handler: s.createCluster},
		{Pattern: "GET " + cluster, Access: AccessRead, handler: s.getCluster},
		{Pattern: "PUT " + cluster, Access: AccessWrite, handler: s.updateCluster},
		{Pattern: "DELETE " + cluster, Access: AccessWrite, handler: s.deleteCluster},
		{Pattern: "GET " + cluster + "/credentials", Access: AccessWrite, handler: s.getCredentials},
		{Pattern: "POST " + cluster + "/switchover", Access: AccessWrite, handler: s.switchover},
		{Pattern: "POST " + cluster + "/failover/ack", Access: AccessWrite, handler: s.ackFailover},
		{Pattern: "POST " + cluster + "/instances/{instance}/reseed", Access: AccessWrite, handler: s.reseed},
		{Pattern: "GET /api/v1/events", Access: AccessRead, handler: s.listEvents},
		{Pattern: "GET " + ns + "/events", Access: AccessRead, handler: s.listEvents},
		{Pattern: "GET " + cluster + "/events", Access: AccessRead, handler: s.listEvents},

		{Pattern: "GET /api/v1/tokens", Access: AccessClusterAdmin, handler: s.listTokens},
		{Pattern: "POST /api/v1/tokens", Access: AccessClusterAdmin, handler: s.createToken},
		{Pattern: "DELETE /api/v1/tokens/{token}", Access: AccessClusterAdmin, handler: s.deleteToken},
	}
	if s.cfg.Metrics != nil {
		rt = append(rt, Route{Pattern: "GET /metrics", Access: AccessPublic, Endpoint: EndpointMetrics, AllNamespaces: true, handler: s.cfg.Metrics.ServeHTTP})
	}
	if s.cfg.Quotas != nil {
		rt = append(rt, s.quotaRoutes()...)
	}
	if s.cfg.Backups != nil {
		rt = append(rt, s.backupRoutes()...)
	}
	if s.cfg.Legacy != nil {
		rt = append(rt, s.legacyRoutes()...)
	}
	return append(rt, Route{Pattern: "/api/", Access: AccessRead, handler: func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound,
			"no such API path: "+r.URL.Path+"; clusters live under /api/v1/namespaces/{namespace}/clusters", nil)
	}})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	who := &requester{name: "anonymous"}
	s.mux.ServeHTTP(rec, r.WithContext(context.WithValue(ctx, requesterKey{}, who)))
	// Changes are an audit trail: who did what, and how it ended.
	level := slog.LevelDebug
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "api request", "method", r.Method, "path", r.URL.Path, "code", rec.code,
		"token", who.name, "remote", r.RemoteAddr, "duration", time.Since(start))
}

// requester carries the name of the request's token back to the log line.
type requester struct{ name string }

type requesterKey struct{}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
