package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
)

// ArtifactPath is where the scheduler serves its mysos-executor for the
// Mesos fetcher.
const ArtifactPath = "/artifacts/mysos-executor"

// executorArtifact is the local mysos-executor binary and its checksum.
type executorArtifact struct {
	path   string
	sha256 string
}

func loadExecutorArtifact(path string) (*executorArtifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the executor to serve to agents (--executor): %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &executorArtifact{path: path, sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ServeHTTP serves the binary; it is not secret, and the fetcher sends no
// credentials. A URI naming another digest (a scheduler's before an
// upgrade) gets 404, so no agent caches this binary under it.
func (a *executorArtifact) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if want := r.URL.Query().Get("sha256"); want != "" && want != a.sha256 {
		http.Error(w, "this scheduler serves mysos-executor sha256 "+a.sha256+", not "+want, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Checksum-Sha256", a.sha256)
	http.ServeFile(w, r, a.path)
}

// withArtifact serves the executor (when the scheduler serves it) beside
// the API. It needs no token: the Mesos fetcher sends none, the binary is
// no secret, and the executor it launches is checked against its SHA-256.
// When the API wants client certificates (--tls-client-ca), every path but
// this one must present a verified one.
func withArtifact(api http.Handler, a *executorArtifact, clientCerts bool) http.Handler {
	mux := http.NewServeMux()
	if a != nil {
		mux.Handle("GET "+ArtifactPath, a)
	}
	if clientCerts {
		api = requireClientCert(api)
	}
	mux.Handle("/", api)
	return mux
}

// requireClientCert refuses requests whose TLS connection presented no
// certificate that the client CA verified.
func requireClientCert(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "a client certificate signed by the scheduler's --tls-client-ca is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
