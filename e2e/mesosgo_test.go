package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
)

// startDevCluster runs a dev cluster in this process for the test.
func startDevCluster(t testing.TB, agents int) *devcluster.Cluster {
	t.Helper()
	return startDevClusterWith(t, devcluster.Config{Agents: agents})
}

// startDevClusterWith starts a dev cluster with test timeouts on free ports.
func startDevClusterWith(t testing.TB, cfg devcluster.Config) *devcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg.Listen, cfg.WorkDir = "127.0.0.1:0", t.TempDir()
	if cfg.Timeouts == (devcluster.Timeouts{}) {
		cfg.Timeouts = devcluster.FastTimeouts()
	}
	c, err := devcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start dev cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// runClient runs a third-party client to completion and returns its output.
func runClient(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s did not finish within %s", name, timeout)
	}
	return out.String(), err
}

// TestMesosGoExamplesRunOnTheDevCluster holds the dev cluster against
// clients nobody on the team wrote: mesos-go's example scheduler launches
// tasks on its custom executor (fetched by the agent over HTTP) and says
// "mission accomplished" once they all finish; it stops with "Exiting
// because task ..." on any lost, killed, failed or errored task. Its exit
// status cannot tell: it cancels its own context on success and then exits 1
// with "context canceled", against real Mesos too.
func TestMesosGoExamplesRunOnTheDevCluster(t *testing.T) {
	for _, codec := range []string{"protobuf", "json"} {
		t.Run(codec, func(t *testing.T) {
			c := startDevCluster(t, 2)
			out, err := runClient(t, 2*time.Minute, "example-scheduler",
				"-url", c.MasterURL()+"/api/v1/scheduler",
				"-codec", codec,
				"-executor", filepath.Join(binDir, "example-executor"),
				"-server.address", "127.0.0.1",
				"-metrics.port", fmt.Sprint(testutil.FreePort(t)),
				"-tasks", "3",
				"-verbose")
			if !strings.Contains(out, "mission accomplished") || strings.Contains(out, "Exiting because") {
				t.Fatalf("example-scheduler (%s) did not finish its tasks: %v\n%s", codec, err, out)
			}
		})
	}
}

// TestMshRunsACommandTask: msh launches one command task (no custom
// executor) and exits 0 on TASK_FINISHED.
func TestMshRunsACommandTask(t *testing.T) {
	c := startDevCluster(t, 1)
	master := strings.TrimPrefix(c.MasterURL(), "http://")
	out, err := runClient(t, time.Minute, "msh", "-master", master, "-user", "root", "--", "/bin/echo", "hello from msh")
	if err != nil || !strings.Contains(out, "TASK_FINISHED") {
		t.Fatalf("msh: %v\n%s", err, out)
	}
}
