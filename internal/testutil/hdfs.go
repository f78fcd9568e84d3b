package testutil

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// HDFS is a real HDFS (Hadoop's MiniDFSCluster: one NameNode, one
// DataNode, on loopback) that hack/hdfs.sh runs for a test.
type HDFS struct {
	// Addr is the NameNode's host:port.
	Addr string
	t    testing.TB
	dir  string
}

// StartHDFS starts an HDFS for the test and stops it when the test ends.
// Without Java or Maven the test is skipped, or fails in CI.
func StartHDFS(t testing.TB) *HDFS {
	t.Helper()
	RequireBinary(t, "java", "apt-get install -y openjdk-17-jdk-headless")
	RequireBinary(t, "mvn", "apt-get install -y maven")
	h := &HDFS{t: t, dir: t.TempDir()}
	out, err := h.script("start", h.dir)
	if err != nil {
		t.Fatalf("start HDFS: %v", err)
	}
	h.Addr = strings.TrimSpace(out)
	t.Cleanup(h.Stop)
	return h
}

// Stop stops the HDFS (the test's cleanup does it too).
func (h *HDFS) Stop() {
	if _, err := h.script("stop", h.dir); err != nil {
		h.t.Errorf("stop HDFS: %v", err)
	}
}

func (h *HDFS) script(args ...string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "..", "..", "hack", "hdfs.sh"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", &scriptError{err: err, stderr: errOut.String()}
	}
	return out.String(), nil
}

type scriptError struct {
	err    error
	stderr string
}

func (e *scriptError) Error() string { return e.err.Error() + ": " + e.stderr }
