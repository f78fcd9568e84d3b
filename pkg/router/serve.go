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

	"github.com/mysos-project/mysos/pkg/store"
)

// Options configure a mysos-router process: one cluster, its two ports,
// and an HTTP listener for /metrics, /healthz and /readyz.
type Options struct {
	Etcd       store.ClientOptions
	EtcdPrefix string
	// Namespace and Name pick the cluster.
	Namespace, Name string
	// RWListen and ROListen are the ports' addresses (either may be empty,
	// not both); HTTPListen serves metrics and health (empty: none).
	RWListen, ROListen, HTTPListen string
	MaxReplicaLag                  time.Duration
	// ShutdownGrace is how long open connections may go on after the
	// router is told to stop.
	ShutdownGrace time.Duration
	Log           *slog.Logger
	// Ready, when set, is called with the bound addresses once serving.
	Ready func(rw, ro, http string)
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
	if o.RWListen == "" && o.ROListen == "" {
		return errors.New("nothing to listen on: give --rw-listen, --ro-listen or both")
	}
	if o.Name == "" {
		return errors.New("--cluster is required: the cluster whose primary and replicas to route to")
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cluster := o.Namespace + "/" + o.Name
	r := New(Config{Cluster: cluster, Discovery: StoreDiscovery{Store: store.New(cli, o.EtcdPrefix), Namespace: o.Namespace, Name: o.Name},
		MaxReplicaLag: o.MaxReplicaLag, Metrics: NewMetrics(reg), Log: o.Log})

	var listeners []net.Listener
	closeAll := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return nil, err
		}
		listeners = append(listeners, ln)
		return ln, nil
	}
	rw, err := listen(o.RWListen)
	if err != nil {
		return fmt.Errorf("--rw-listen: %w", err)
	}
	ro, err := listen(o.ROListen)
	if err != nil {
		return fmt.Errorf("--ro-listen: %w", err)
	}
	httpLn, err := listen(o.HTTPListen)
	if err != nil {
		return fmt.Errorf("--http-listen: %w", err)
	}
	var wg sync.WaitGroup
	if httpLn != nil {
		srv := &http.Server{Handler: r.httpHandler(reg), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() { _ = srv.Serve(httpLn) })
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			wg.Wait()
		}()
	}
	o.Log.Info("mysos-router serving", "cluster", cluster, "rw", addrOf(rw), "ro", addrOf(ro), "http", addrOf(httpLn),
		"max-replica-lag", o.MaxReplicaLag.String())
	if o.Ready != nil {
		o.Ready(addrOf(rw), addrOf(ro), addrOf(httpLn))
	}
	err = r.Run(ctx, rw, ro, o.ShutdownGrace)
	o.Log.Info("mysos-router stopped", "cluster", cluster)
	return err
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// httpHandler serves /metrics, /healthz (the process is up) and /readyz
// (a record names a primary, so the read-write port routes).
func (r *Router) httpHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rec, ok := r.Current()
		switch {
		case !ok:
			http.Error(w, "no discovery record yet (is the cluster there, and etcd reachable?)", http.StatusServiceUnavailable)
		case rec.Primary == "":
			http.Error(w, fmt.Sprintf("epoch %d names no primary: read-write connections are refused until one is writable", rec.Epoch), http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "ok: epoch %d, primary %s, replicas %s\n", rec.Epoch, rec.Primary, strings.Join(rec.Replicas, ","))
		}
	})
	return mux
}
