package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/devcluster"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/spec"
)

// readyz returns the scheduler's /readyz body.
func (s *scheduler) readyz() string {
	s.t.Helper()
	resp, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// activeFrameworks lists the ids of the frameworks connected to the master.
func activeFrameworks(c *devcluster.Cluster) []string {
	var ids []string
	for _, f := range c.Master().Frameworks() {
		if f.Connected {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// TestSchedulerSubscribesToMesos: with --master the scheduler subscribes as
// a framework, says so in /readyz and in each cluster's Ready condition, and
// a restarted scheduler resumes the same framework.
func TestSchedulerSubscribesToMesos(t *testing.T) {
	c := startDevCluster(t, 1)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--failover-timeout", "1h")
	testutil.WaitFor(t, 30*time.Second, "the Mesos subscription", func() bool {
		return strings.Contains(s.readyz(), "[+]mesos ok")
	})
	frameworks := activeFrameworks(c)
	if len(frameworks) != 1 {
		t.Fatalf("master has active frameworks %v; want exactly one", frameworks)
	}

	s.mustCtl("apply", "-f", quickstartPath(t))
	s.mustCtl("wait", "clusters/quickstart", "--for=condition=Ready=False", "--timeout=30s")
	got := getCluster(t, s, "quickstart")
	if ready := got.Status.FindCondition(spec.ConditionReady); ready == nil || ready.Reason != reconciler.ReasonInstancesPending {
		t.Fatalf("Ready condition %+v; want reason %s once subscribed (one agent cannot hold three spread instances)", ready, reconciler.ReasonInstancesPending)
	}

	s.restart()
	testutil.WaitFor(t, 30*time.Second, "the restarted scheduler to resume the framework", func() bool {
		ids := activeFrameworks(c)
		return strings.Contains(s.readyz(), "[+]mesos ok") && len(ids) == 1 && ids[0] == frameworks[0]
	})
}
