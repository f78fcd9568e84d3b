package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// checkTimeout bounds each readiness check.
const checkTimeout = 3 * time.Second

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz runs every check and lists them as Kubernetes does ("[+]etcd ok").
// Only required checks fail it: an unreachable Mesos master is reported, but
// the API still serves, since specs can be stored before Mesos is there.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	ready := true
	for _, c := range s.cfg.Checks {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		err := c.Run(ctx)
		cancel()
		switch {
		case err == nil:
			fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
		case c.Required:
			ready = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.Name, err)
		default:
			fmt.Fprintf(&b, "[!]%s not ready (not required): %v\n", c.Name, err)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("readyz check failed\n")
	} else {
		b.WriteString("readyz check passed\n")
	}
	fmt.Fprint(w, b.String())
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version, "apiVersion": "mysos.io/v1alpha1"})
}
