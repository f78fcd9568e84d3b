// Package scheduler assembles the mysos-scheduler process: the store (an
// embedded etcd or an external cluster), the REST API and the reconciler,
// which runs only while this process leads.
package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/framework"
	"github.com/mysos-project/mysos/pkg/metrics"
	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/router"
	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// Options configure the scheduler; cmd/mysos-scheduler maps flags onto them.
type Options struct {
	DataDir string
	Listen  string
	// EtcdEndpoints selects an external etcd; empty starts the embedded one.
	EtcdEndpoints     []string
	EtcdPrefix        string
	EmbeddedClientURL string
	EmbeddedPeerURL   string
	// EmbeddedAllowRemote lets the embedded etcd listen beyond loopback.
	EmbeddedAllowRemote bool
	// Etcd secures the connection to an external etcd (TLS, user).
	Etcd      store.ClientOptions
	TokenFile string
	// TokensFile defines more tokens with roles and namespaces; Anonymous
	// names the endpoints served without one (nil: the defaults).
	TokensFile string
	Anonymous  []string
	// TLS, when it has a certificate, serves the API over HTTPS.
	TLS TLS
	// MySQLCACert and MySQLCAKey, when given, are the CA that signs every
	// cluster's MySQL certificates (spec.tls) instead of one per cluster.
	MySQLCACert, MySQLCAKey string
	// SecretsKeyFile is the key ring sealing passwords in etcd (default
	// <DataDir>/secrets.key, generated if missing).
	SecretsKeyFile string
	// Mesos configures the framework; no masters means none (the API and
	// the store still serve, and statuses say Mesos is unavailable).
	Mesos framework.Config
	// Executor is what instances' tasks run on; RelaunchTimeout is how long
	// a failed instance waits for its own agent before moving.
	Executor        reconciler.ExecutorConfig
	RelaunchTimeout time.Duration
	// ServeExecutor serves Executor.Path to agents over HTTP (the Mesos
	// fetcher) unless Executor.URI names another source; AdvertiseURL is
	// this scheduler's base URL as agents reach it.
	ServeExecutor bool
	AdvertiseURL  string
	// Backups says where backups go by default and what backup tasks get;
	// an empty DefaultDestination means file://<DataDir>/backups.
	Backups reconciler.Backups
	// LegacyAPI serves the original Mysos' POST/DELETE /clusters/<name>.
	LegacyAPI bool
	// DebugListen, when set, serves Go's profiles (/debug/pprof/) there.
	DebugListen string
	// Router, with a Host, routes the clients of clusters with spec.router.
	Router  RouterOptions
	Version string
	Logger  *slog.Logger
	// Ready, when set, is called with the API's address once it serves.
	Ready func(addr string)

	metrics *metrics.Registry
	mysqlCA *pki.CA // loaded from MySQLCACert and MySQLCAKey
}

// RouterOptions configure the routers the scheduler runs itself for the
// clusters whose spec names router ports (the scheduler-embedded mode of
// mysos-router, docs/router.md).
type RouterOptions struct {
	// Host is the address the ports are opened on; empty: no routers.
	Host string
	// Ports are the ports spec.router may name, checked by the API at
	// apply and by the routers (the zero range: every port from 1024).
	Ports spec.PortRange
	// MaxReplicaLag bounds the lag of the replicas read-only ports use.
	MaxReplicaLag time.Duration
}

// Defaults for Options.
const (
	DefaultListen            = "127.0.0.1:55001"
	DefaultEmbeddedClientURL = "http://127.0.0.1:2479"
	DefaultEmbeddedPeerURL   = "http://127.0.0.1:2480"
	// leaderTTLSeconds is how long a crashed leader blocks a standby.
	leaderTTLSeconds = 10
	dialTimeout      = 5 * time.Second
	shutdownTimeout  = 10 * time.Second
	// routerShutdownGrace is how long routed connections may go on once
	// their router stops; it fits in shutdownTimeout.
	routerShutdownGrace = shutdownTimeout
)

// DefaultDataDir is ~/.mysos/scheduler, which mysosctl also looks in.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mysos/scheduler"
	}
	return filepath.Join(home, ".mysos", "scheduler")
}

// DefaultExecutorPath is mysos-executor beside the running binary, which is
// where `make build` puts it.
func DefaultExecutorPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "mysos-executor"
	}
	return filepath.Join(filepath.Dir(exe), "mysos-executor")
}

// Run serves until ctx ends, then shuts everything down in order.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	endpoints := o.EtcdEndpoints
	if e := o.Etcd; len(endpoints) == 0 && e.CAFile+e.CertFile+e.KeyFile+e.Username+e.PasswordFile != "" {
		return errors.New("--etcd-ca-file, --etcd-cert-file, --etcd-key-file, --etcd-user and --etcd-password-file are for an external etcd: give --etcd-endpoints too")
	}
	if len(endpoints) == 0 {
		embedded, err := store.StartEmbedded(store.EmbeddedConfig{
			Dir: filepath.Join(o.DataDir, "etcd"), ClientURL: o.EmbeddedClientURL, PeerURL: o.EmbeddedPeerURL,
			AllowRemote: o.EmbeddedAllowRemote,
		})
		if err != nil {
			return err
		}
		defer embedded.Close() // after the client closes (defers run in reverse)
		endpoints = embedded.Endpoints()
		log.Info("embedded etcd started", "dir", filepath.Join(o.DataDir, "etcd"), "endpoints", endpoints)
	}
	o.metrics = metrics.New()
	etcdOpts := o.Etcd
	etcdOpts.Endpoints, etcdOpts.DialTimeout = endpoints, dialTimeout
	etcdConfig, err := etcdOpts.Config()
	if err != nil {
		return err
	}
	etcdConfig.DialOptions = []grpc.DialOption{grpc.WithUnaryInterceptor(o.metrics.Etcd.Interceptor())}
	cli, err := clientv3.New(etcdConfig)
	if err != nil {
		return fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	defer cli.Close()
	ring, err := loadSecretsKey(o, log)
	if err != nil {
		return err
	}
	st := store.New(cli, o.EtcdPrefix).WithSealer(ring)
	return serve(ctx, o, st, log)
}

func serve(ctx context.Context, o Options, st *store.Store, log *slog.Logger) error {
	if o.Router.Host != "" {
		if err := router.CheckHost(o.Router.Host); err != nil {
			return err // before anything starts that would need stopping
		}
	}
	if o.metrics == nil {
		o.metrics = metrics.New()
	}
	tokenFile := o.TokenFile
	if tokenFile == "" {
		tokenFile = filepath.Join(o.DataDir, "token")
	}
	token, created, err := apiserver.LoadOrCreateToken(tokenFile)
	if err != nil {
		return err
	}
	if created {
		log.Info("generated a new API token", "file", tokenFile)
	}
	var fileTokens []apiserver.FileToken
	if o.TokensFile != "" {
		if fileTokens, err = apiserver.LoadTokensFile(o.TokensFile); err != nil {
			return err
		}
	}
	var tlsConfig *tls.Config
	scheme := "http"
	if o.TLS.enabled() {
		if tlsConfig, err = o.TLS.serverConfig(); err != nil {
			return err
		}
		scheme = "https"
	}
	mesos := &mesosState{}
	external := o.AdvertiseURL
	if external == "" {
		external = scheme + "://" + o.Listen
	}
	var legacy apiserver.LegacyStore
	if o.LegacyAPI {
		legacy = st
	}
	if o.mysqlCA, err = loadMySQLCA(o); err != nil {
		return err
	}
	if o.Backups.DefaultDestination == "" {
		dir, err := filepath.Abs(filepath.Join(o.DataDir, "backups"))
		if err != nil {
			return err
		}
		o.Backups.DefaultDestination = "file://" + dir
	}
	api, err := apiserver.New(apiserver.Config{
		Store: st, Credentials: credentialStore{st, mysqlTLS(st, o.mysqlCA)}, Status: st, Events: st, Legacy: legacy,
		Backups: backupService{Store: st, Backups: o.Backups}, ExternalURL: external, Version: o.Version, Logger: log,
		Token: token, FileTokens: fileTokens, Tokens: st, Quotas: st, RouterPorts: o.Router.Ports, Anonymous: o.Anonymous, Metrics: o.metrics.Handler(),
		Checks: []apiserver.Check{
			{Name: "etcd", Required: true, Run: st.Ping},
			{Name: "mesos", Run: func(context.Context) error { return mesos.err() }},
		},
	})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// serving ends everything started below (the leader's work, the
	// routers, the profiles) when ctx ends or the API server fails.
	serving, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if o.DebugListen != "" {
		if _, err := serveDebug(serving, &wg, o.DebugListen, log); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	addr := ln.Addr().String()
	ctlConfig := client.Config{Server: scheme + "://" + addr, TokenFile: tokenFile}
	if tlsConfig != nil {
		ctlConfig.CertificateAuthority = o.TLS.clientCA()
		ln = tls.NewListener(ln, tlsConfig)
	}
	if err := client.SaveConfig(filepath.Join(o.DataDir, "mysosctl.yaml"), ctlConfig); err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	artifact, err := executorDelivery(&o, scheme+"://"+addr)
	if err != nil {
		return err
	}
	srv := newHTTPServer(withArtifact(api, artifact, o.TLS.ClientCAFile != ""), apiLimits)
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	wg.Go(func() { runWhileLeader(serving, st, o, mesos, log) })
	if o.Router.Host != "" {
		routers := router.NewManager(router.ManagerConfig{
			Clusters: st, Events: st, Host: o.Router.Host, Ports: o.Router.Ports, MaxReplicaLag: o.Router.MaxReplicaLag,
			ShutdownGrace: routerShutdownGrace, Metrics: router.NewMetrics(o.metrics.Registerer()), Log: log,
			Discovery: func(ns, name string) router.Discovery {
				return router.StoreDiscovery{Store: st, Namespace: ns, Name: name}
			},
		})
		wg.Go(func() { _ = routers.Run(serving) })
		log.Info("routing clusters with spec.router", "host", o.Router.Host)
	}
	log.Info("mysos API serving", "addr", addr, "client-config", filepath.Join(o.DataDir, "mysosctl.yaml"))
	if o.Ready != nil {
		o.Ready(addr)
	}
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	stopServing()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// loadSecretsKey reads the key ring that seals passwords in etcd, making
// one on first start.
func loadSecretsKey(o Options, log *slog.Logger) (*seal.Ring, error) {
	path := o.SecretsKeyFile
	if path == "" {
		path = filepath.Join(o.DataDir, "secrets.key")
	}
	ring, created, err := seal.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("--secrets-key-file: %w", err)
	}
	if created {
		log.Warn("generated the key that seals passwords in etcd: back it up, and give every scheduler the same file", "file", path, "key", ring.Primary())
	}
	return ring, nil
}

// httpLimits bound what one client can hold of the API's HTTP server.
type httpLimits struct {
	readHeader, read, idle time.Duration
	maxHeaderBytes         int
}

// apiLimits: a client gets 10 s to send its headers (a slowloris client
// trickling them is cut off), a minute for its body (bodies are at most
// apiserver.MaxBodyBytes), and at most 64 KiB of headers.
var apiLimits = httpLimits{readHeader: 10 * time.Second, read: time.Minute, idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}

func newHTTPServer(h http.Handler, l httpLimits) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: l.readHeader, ReadTimeout: l.read,
		IdleTimeout: l.idle, MaxHeaderBytes: l.maxHeaderBytes}
}

// executorDelivery decides how agents get mysos-executor: from --executor-uri
// if given, else from this scheduler, which serves its own --executor at
// ArtifactPath (advertised as --advertise-url, default http://<listen>),
// fetched once per agent through the Mesos fetcher cache.
func executorDelivery(o *Options, baseURL string) (*executorArtifact, error) {
	if o.Executor.URI != "" || !o.ServeExecutor {
		return nil, nil
	}
	a, err := loadExecutorArtifact(o.Executor.Path)
	if err != nil {
		return nil, err
	}
	base := o.AdvertiseURL
	if base == "" {
		base = baseURL
	}
	// The URI names the binary's digest, so agents may cache it: a new
	// executor comes with a new URI, never as a stale cache hit.
	o.Executor.URI = strings.TrimSuffix(base, "/") + ArtifactPath + "?sha256=" + a.sha256
	o.Executor.SHA256, o.Executor.Cache = a.sha256, true
	return a, nil
}

// runWhileLeader campaigns for leadership and, while it holds it, runs the
// Mesos framework and the reconciler, campaigning again when it is lost. Only
// the leader holds the Mesos subscription, so two schedulers never act at once.
func runWhileLeader(ctx context.Context, st *store.Store, o Options, mesos *mesosState, log *slog.Logger) {
	id := fmt.Sprintf("%s-%d", hostname(), os.Getpid())
	mesos.set(nil, standby{st: st})
	for ctx.Err() == nil {
		lead, err := st.Campaign(ctx, id, leaderTTLSeconds)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("leader election failed; retrying", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		log.Info("leading: reconciler started", "id", id)
		leadCtx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lead.Done():
				log.Warn("leadership lost: reconciler stopped")
			case <-leadCtx.Done():
			}
			cancel()
		}()
		leadTerm(leadCtx, st, o, mesos, log)
		cancel()
		mesos.set(nil, standby{st: st})
		resignCtx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = lead.Resign(resignCtx)
		rcancel()
	}
}

// leadTerm runs one term of leadership: the framework, when masters are
// configured, its launcher, and the reconciler.
func leadTerm(ctx context.Context, st *store.Store, o Options, mesos *mesosState, log *slog.Logger) {
	// Seal what an older key (or none) sealed; a value that will not open
	// is left alone and reported, since servers still use its passwords.
	if n, err := st.ResealSecrets(ctx); err != nil {
		log.Error("some stored passwords could not be resealed", "resealed", n, "err", err)
	} else if n > 0 {
		log.Info("resealed stored passwords with the current key", "values", n)
	}
	fwCfg := o.Mesos
	rec := &reconciler.ClusterReconciler{Store: st, Mesos: mesos, Role: fwCfg.Role, Backups: o.Backups,
		BackupMetrics: o.metrics.Backups, ClusterMetrics: o.metrics.Clusters, OperationMetrics: o.metrics.Operations,
		ServerMetrics:   o.metrics.Servers,
		RelaunchTimeout: o.RelaunchTimeout, Log: log.With("component", "reconciler")}
	if o.Executor.Workload == taskspec.WorkloadMySQL {
		rec.Servers = reconciler.MySQLServers{}
	}
	rec.TLS = mysqlTLS(st, o.mysqlCA)
	ctrl := reconciler.NewController(rec, 2, log)
	ctrl.Metrics = o.metrics.Reconciles
	o.metrics.QueueDepth(ctrl.Queue.Len)
	var wg sync.WaitGroup
	if len(fwCfg.Masters) == 0 {
		mesos.set(nil, noMesos{})
	} else {
		var fw *framework.Framework
		fwCfg.OnStateChange = ctrl.ResyncAll
		fwCfg.Metrics = o.metrics.Mesos
		fwCfg.OnUpdate = func(t framework.Task) {
			if key, ok := reconciler.ClusterOfTask(t.ID); ok {
				ctrl.Queue.Add(key)
			}
		}
		fwCfg.Offers = &reconciler.Launcher{
			Store: st, Clusters: st, Passwords: st, Role: fwCfg.Role, Principal: fwCfg.Principal,
			TLS:         rec.TLS,
			FrameworkID: func() string { return fw.ID() },
			Executor:    o.Executor, Jobs: st, Archivers: st, Backups: o.Backups, Wake: ctrl.Queue.Add, Log: log.With("component", "launcher"),
		}
		var err error
		fw, err = framework.New(fwCfg, st, log.With("component", "framework"))
		if err != nil {
			log.Error("Mesos framework not started", "err", err)
			mesos.set(nil, noMesos{reason: err.Error()})
		} else {
			mesos.set(fw, nil)
			wg.Go(func() { _ = fw.Run(ctx) })
		}
	}
	ctrl.Run(ctx, st.WatchKeys(ctx))
	wg.Wait()
}

// subscription says whether, and why not, Mesos is reachable.
type subscription interface{ Subscribed() (bool, string) }

// mesosState is the Mesos connection as the reconciler and /readyz see it:
// the framework while leading, a standby's view otherwise.
type mesosState struct {
	mu  sync.Mutex
	fw  *framework.Framework
	why subscription // when fw is nil
}

func (m *mesosState) set(fw *framework.Framework, why subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fw, m.why = fw, why
}

func (m *mesosState) get() (*framework.Framework, subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fw, m.why
}

// Subscribed implements reconciler.Mesos.
func (m *mesosState) Subscribed() (bool, string) {
	fw, why := m.get()
	switch {
	case fw != nil:
		return fw.Subscribed()
	case why != nil:
		return why.Subscribed()
	}
	return false, "starting"
}

// Task implements reconciler.Mesos.
func (m *mesosState) Task(id string) (framework.Task, bool) {
	if fw, _ := m.get(); fw != nil {
		return fw.Task(id)
	}
	return framework.Task{}, false
}

// TasksWithPrefix implements reconciler.Mesos.
func (m *mesosState) TasksWithPrefix(prefix string) []framework.Task {
	if fw, _ := m.get(); fw != nil {
		return fw.TasksWithPrefix(prefix)
	}
	return nil
}

// Kill implements reconciler.Mesos.
func (m *mesosState) Kill(ctx context.Context, taskID, agentID string) error {
	if fw, _ := m.get(); fw != nil {
		return fw.Kill(ctx, taskID, agentID)
	}
	return framework.ErrNotSubscribed
}

// Revive implements reconciler.Mesos.
func (m *mesosState) Revive(ctx context.Context) error {
	if fw, _ := m.get(); fw != nil {
		return fw.Revive(ctx)
	}
	return framework.ErrNotSubscribed
}

// ReconcileTasks implements reconciler.Mesos.
func (m *mesosState) ReconcileTasks(ctx context.Context, tasks []framework.TaskRef) error {
	if fw, _ := m.get(); fw != nil {
		return fw.ReconcileTasks(ctx, tasks)
	}
	return framework.ErrNotSubscribed
}

func (m *mesosState) err() error {
	if ok, reason := m.Subscribed(); !ok {
		return errors.New(reason)
	}
	return nil
}

// noMesos stands in when no master is configured.
type noMesos struct{ reason string }

func (n noMesos) Subscribed() (bool, string) {
	if n.reason != "" {
		return false, n.reason
	}
	return false, "no Mesos master configured (start mysos-scheduler with --master http://HOST:5050)"
}

// standby is a scheduler that does not lead: the leader holds the subscription.
type standby struct{ st *store.Store }

func (s standby) Subscribed() (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	leader, err := s.st.Leader(ctx)
	if err != nil || leader == "" {
		return false, "standby: no scheduler leads yet"
	}
	return false, "standby: the leading scheduler " + leader + " holds the Mesos subscription"
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// backupService is the API's view of backups: jobs in the store, backups
// in their targets.
type backupService struct {
	*store.Store
	reconciler.Backups
}
