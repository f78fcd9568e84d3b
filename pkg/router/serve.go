package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// Options configure a mysos-router process: one cluster and its two ports
// (Name, RWListen, ROListen), or every cluster whose spec names router
// ports (SpecHost, Ports), and an HTTP listener for /metrics, /healthz and
// /readyz.
type Options struct {
	Etcd       store.ClientOptions
	EtcdPrefix string
	// Namespace and Name pick the cluster.
	Namespace, Name string
	// RWListen and ROListen are the ports' addresses (either may be empty,
	// not both); HTTPListen serves metrics and health (empty: none).
	RWListen, ROListen, HTTPListen string
	// SpecHost, instead of one cluster, routes every cluster with
	// spec.router on this address, as a scheduler's --router-host does;
	// Ports bound the ports it opens.
	SpecHost      string
	Ports         spec.PortRange
	MaxReplicaLag time.Duration
	// ShutdownGrace is how long open connections may go on after the
	// router is told to stop.
	ShutdownGrace time.Duration
	Log           *slog.Logger
	// Ready, when set, is called with the bound addresses once serving.
	Ready func(rw, ro, http string)
}

func (o *Options) check() error {
	if o.SpecHost != "" {
		if o.Name != "" || o.RWListen != "" || o.ROListen != "" {
			return errors.New("--router-host routes every cluster whose spec names router ports: give --cluster, --rw-listen and --ro-listen only without it")
		}
		return CheckHost(o.SpecHost)
	}
	if o.RWListen == "" && o.ROListen == "" {
		return errors.New("nothing to listen on: give --rw-listen, --ro-listen or both (or --router-host to route the clusters whose spec names ports)")
	}
	if o.Name == "" {
		return errors.New("--cluster is required: the cluster whose primary and replicas to route to")
	}
	return nil
}

// CheckHost makes a mistyped --router-host (a port in it, an address not
// this host's) an error at start rather than a warning on every routed
// cluster.
func CheckHost(host string) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return fmt.Errorf("--router-host %q: %w (give an address of this host, e.g. 0.0.0.0 or 127.0.0.1, without a port)", host, err)
	}
	return ln.Close()
}

// StoreDiscovery watches a cluster's record in Mysos' etcd.
type StoreDiscovery struct {
	Store           *store.Store
	Namespace, Name string
}

// Watch implements Discovery.
func (d StoreDiscovery) Watch(ctx context.Context) <-chan Record {
	in := d.Store.WatchDiscovery(ctx, d.Namespace, d.Name)
	out := make(chan Record)
	go func() {
		defer close(out)
		for r := range in {
			select {
			case out <- Record{UID: r.UID, Primary: r.Primary, Replicas: r.Replicas, Epoch: r.Epoch, ReplicaLag: r.ReplicaLag}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Serve runs a router until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg, err := o.Etcd.Config()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer cli.Close()
	st := store.New(cli, o.EtcdPrefix)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := NewMetrics(reg)

	var listeners []net.Listener
	listen := func(flag, addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeListeners(listeners)
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		listeners = append(listeners, ln)
		return ln, nil
	}
	rw, err := listen("--rw-listen", o.RWListen)
	if err != nil {
		return err
	}
	ro, err := listen("--ro-listen", o.ROListen)
	if err != nil {
		return err
	}
	httpLn, err := listen("--http-listen", o.HTTPListen)
	if err != nil {
		return err
	}
	var run func(context.Context) error
	var readyz http.HandlerFunc
	if o.SpecHost != "" {
		m := NewManager(ManagerConfig{Clusters: st, Events: st, Host: o.SpecHost, Ports: o.Ports,
			MaxReplicaLag: o.MaxReplicaLag, ShutdownGrace: o.ShutdownGrace, Metrics: metrics, Log: o.Log,
			Discovery: func(ns, name string) Discovery { return StoreDiscovery{Store: st, Namespace: ns, Name: name} }})
		run, readyz = m.Run, func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "ok: routing the clusters whose spec names router ports on %s (mysosctl events CLUSTER says which)\n", o.SpecHost)
		}
		o.Log.Info("mysos-router serving the clusters with spec.router", "host", o.SpecHost, "ports", o.Ports.String(), "http", addrOf(httpLn))
	} else {
		cluster := o.Namespace + "/" + o.Name
		r := New(Config{Cluster: cluster, Discovery: StoreDiscovery{Store: st, Namespace: o.Namespace, Name: o.Name},
			MaxReplicaLag: o.MaxReplicaLag, Metrics: metrics, Log: o.Log})
		run = func(ctx context.Context) error { return r.Run(ctx, rw, ro, o.ShutdownGrace) }
		readyz = r.readyz
		o.Log.Info("mysos-router serving", "cluster", cluster, "rw", addrOf(rw), "ro", addrOf(ro), "http", addrOf(httpLn),
			"max-replica-lag", o.MaxReplicaLag.String())
	}
	var wg sync.WaitGroup
	if httpLn != nil {
		srv := &http.Server{Handler: httpHandler(reg, readyz), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() { _ = srv.Serve(httpLn) })
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			wg.Wait()
		}()
	}
	if o.Ready != nil {
		o.Ready(addrOf(rw), addrOf(ro), addrOf(httpLn))
	}
	err = run(ctx)
	o.Log.Info("mysos-router stopped")
	return err
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// httpHandler serves /metrics, /healthz (the process is up) and /readyz.
func httpHandler(reg *prometheus.Registry, readyz http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", readyz)
	return mux
}

// readyz answers 200 while a record names a primary, so the read-write
// port routes.
func (r *Router) readyz(w http.ResponseWriter, _ *http.Request) {
	rec, ok := r.Current()
	switch {
	case !ok:
		http.Error(w, "no discovery record yet (is the cluster there, and etcd reachable?)", http.StatusServiceUnavailable)
	case rec.Primary == "":
		http.Error(w, fmt.Sprintf("epoch %d names no primary: read-write connections are refused until one is writable", rec.Epoch), http.StatusServiceUnavailable)
	default:
		fmt.Fprintf(w, "ok: epoch %d, primary %s, replicas %s\n", rec.Epoch, rec.Primary, strings.Join(rec.Replicas, ","))
	}
}
