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
// credentials.
func (a *executorArtifact) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Checksum-Sha256", a.sha256)
	http.ServeFile(w, r, a.path)
}

// withExtras serves the executor (when the scheduler serves it) and the
// metrics beside the API. /metrics needs no token, as Prometheus scrapes
// it; it shows no secret.
func withExtras(api http.Handler, a *executorArtifact, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	if a != nil {
		mux.Handle("GET "+ArtifactPath, a)
	}
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", api)
	return mux
}
