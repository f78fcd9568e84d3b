// Package apiserver serves Mysos' versioned REST API: MySQLCluster objects
// under /api/v1, plus /healthz, /readyz and /version. It validates and
// defaults every object before it reaches the store, and answers errors with
// Kubernetes-style Status bodies that name each bad field.
package apiserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

// MaxBodyBytes is the largest request body accepted; bigger ones get 413.
// A cluster spec is a few KiB; a megabyte leaves room for annotations.
const MaxBodyBytes = 1 << 20

// ClusterStore is what the API needs from storage (pkg/store implements it).
type ClusterStore interface {
	Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error)
	List(ctx context.Context, ns string) ([]*spec.MySQLCluster, int64, error)
	Create(ctx context.Context, c *spec.MySQLCluster) (*spec.MySQLCluster, error)
	Update(ctx context.Context, c *spec.MySQLCluster, expectedRV string) (*spec.MySQLCluster, bool, error)
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
	// Backups, when set, serves backups and checks spec.restore.
	Backups BackupService
	// Legacy, when set, serves the original Mysos' POST and DELETE
	// /clusters/<name> (no bearer token; see legacy.go).
	Legacy LegacyStore
	// ExternalURL is this API's base URL as clients reach it.
	ExternalURL string
	// Token every /api request must present as "Authorization: Bearer ...".
	Token   string
	Checks  []Check
	Version string
	Logger  *slog.Logger
	// RequestTimeout bounds each request's work, storage calls included.
	RequestTimeout time.Duration
}

// Server is the HTTP handler of the API.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// New builds the API handler.
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("apiserver: a bearer token is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /{$}", s.statusPageHandler)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /version", s.version)

	s.mux.Handle("GET /api/v1/clusters", s.authed(s.listClusters))
	s.mux.Handle("GET /api/v1/namespaces/{namespace}/clusters", s.authed(s.listClusters))
	s.mux.Handle("POST /api/v1/namespaces/{namespace}/clusters", s.authed(s.createCluster))
	s.mux.Handle("GET /api/v1/namespaces/{namespace}/clusters/{name}", s.authed(s.getCluster))
	s.mux.Handle("PUT /api/v1/namespaces/{namespace}/clusters/{name}", s.authed(s.updateCluster))
	s.mux.Handle("DELETE /api/v1/namespaces/{namespace}/clusters/{name}", s.authed(s.deleteCluster))
	s.mux.Handle("GET /api/v1/namespaces/{namespace}/clusters/{name}/credentials", s.authed(s.getCredentials))
	s.mux.Handle("POST /api/v1/namespaces/{namespace}/clusters/{name}/switchover", s.authed(s.switchover))
	s.mux.Handle("POST /api/v1/namespaces/{namespace}/clusters/{name}/failover/ack", s.authed(s.ackFailover))
	s.mux.Handle("POST /api/v1/namespaces/{namespace}/clusters/{name}/instances/{instance}/reseed", s.authed(s.reseed))
	s.mux.Handle("GET /api/v1/events", s.authed(s.listEvents))
	s.mux.Handle("GET /api/v1/namespaces/{namespace}/events", s.authed(s.listEvents))
	s.mux.Handle("GET /api/v1/namespaces/{namespace}/clusters/{name}/events", s.authed(s.listEvents))
	if s.cfg.Backups != nil {
		s.backupRoutes()
	}
	if s.cfg.Legacy != nil {
		s.legacyRoutes()
	}
	s.mux.Handle("/api/", s.authed(func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound,
			"no such API path: "+r.URL.Path+"; clusters live under /api/v1/namespaces/{namespace}/clusters", nil)
	}))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	s.mux.ServeHTTP(rec, r.WithContext(ctx))
	s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "code", rec.code, "duration", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}
