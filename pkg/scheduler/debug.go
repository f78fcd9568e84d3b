package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
)

// serveDebug serves Go's profiles (net/http/pprof) on their own listener
// until ctx ends: profiling is for whoever runs the scheduler, so it is off
// by default, kept away from the API's routes and tokens, and meant for a
// loopback address. It returns the address it listens on.
func serveDebug(ctx context.Context, wg *sync.WaitGroup, listen string, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("--debug-listen %s: %w", listen, err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		log.Warn("profiles are served without authentication beyond loopback", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or trace takes as long as asked (?seconds=N), so there
	// is no write timeout; headers must still come quickly.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: apiLimits.readHeader, MaxHeaderBytes: apiLimits.maxHeaderBytes}
	wg.Go(func() { _ = srv.Serve(ln) })
	wg.Go(func() {
		<-ctx.Done()
		_ = srv.Close()
	})
	log.Info("profiles served", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	return ln.Addr().String(), nil
}
