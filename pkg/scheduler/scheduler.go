// Package scheduler assembles the mysos-scheduler process: the store (an
// embedded etcd or an external cluster), the REST API and the reconciler,
// which runs only while this process leads.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/store"
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
	TokenFile         string
	Version           string
	Logger            *slog.Logger
	// Ready, when set, is called with the API's address once it serves.
	Ready func(addr string)
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
)

// DefaultDataDir is ~/.mysos/scheduler, which mysosctl also looks in.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mysos/scheduler"
	}
	return filepath.Join(home, ".mysos", "scheduler")
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
	if len(endpoints) == 0 {
		embedded, err := store.StartEmbedded(store.EmbeddedConfig{
			Dir: filepath.Join(o.DataDir, "etcd"), ClientURL: o.EmbeddedClientURL, PeerURL: o.EmbeddedPeerURL,
		})
		if err != nil {
			return err
		}
		defer embedded.Close() // after the client closes (defers run in reverse)
		endpoints = embedded.Endpoints()
		log.Info("embedded etcd started", "dir", filepath.Join(o.DataDir, "etcd"), "endpoints", endpoints)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: dialTimeout, Logger: nil})
	if err != nil {
		return fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	defer cli.Close()
	st := store.New(cli, o.EtcdPrefix)
	return serve(ctx, o, st, log)
}

func serve(ctx context.Context, o Options, st *store.Store, log *slog.Logger) error {
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
	mesos := noMesos{}
	api, err := apiserver.New(apiserver.Config{
		Store: st, Token: token, Version: o.Version, Logger: log,
		Checks: []apiserver.Check{
			{Name: "etcd", Required: true, Run: st.Ping},
			{Name: "mesos", Run: func(context.Context) error { return mesos.err() }},
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	addr := ln.Addr().String()
	if err := client.SaveConfig(filepath.Join(o.DataDir, "mysosctl.yaml"), client.Config{Server: "http://" + addr, TokenFile: tokenFile}); err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- srv.Serve(ln) })
	wg.Go(func() { runWhileLeader(ctx, st, mesos, log) })
	log.Info("mysos API serving", "addr", addr, "client-config", filepath.Join(o.DataDir, "mysosctl.yaml"))
	if o.Ready != nil {
		o.Ready(addr)
	}
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// runWhileLeader campaigns for leadership and runs the reconciler while it
// holds it, campaigning again when it is lost.
func runWhileLeader(ctx context.Context, st *store.Store, mesos reconciler.MesosState, log *slog.Logger) {
	id := fmt.Sprintf("%s-%d", hostname(), os.Getpid())
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
		ctrl := reconciler.NewController(&reconciler.ClusterReconciler{Store: st, Mesos: mesos}, 2, log)
		ctrl.Run(leadCtx, st.WatchKeys(leadCtx))
		cancel()
		resignCtx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = lead.Resign(resignCtx)
		rcancel()
	}
}

// noMesos is the Mesos connection until the framework exists: never subscribed.
type noMesos struct{}

func (noMesos) Subscribed() (bool, string) {
	return false, "the Mesos framework is not part of this build yet"
}

func (m noMesos) err() error {
	_, reason := m.Subscribed()
	return errors.New(reason)
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
