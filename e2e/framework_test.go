package e2e

import (
	"encoding/json"
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
func activeFrameworks(t *testing.T, c *devcluster.Cluster) []string {
	t.Helper()
	resp, err := http.Get(c.MasterURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state struct {
		Frameworks []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range state.Frameworks {
		if f.Active {
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
	frameworks := activeFrameworks(t, c)
	if len(frameworks) != 1 {
		t.Fatalf("master has active frameworks %v; want exactly one", frameworks)
	}

	s.mustCtl("apply", "-f", quickstartPath(t))
	s.mustCtl("wait", "clusters/quickstart", "--for=condition=Ready=False", "--timeout=30s")
	got := getCluster(t, s, "quickstart")
	if ready := got.Status.FindCondition(spec.ConditionReady); ready == nil || ready.Reason != reconciler.ReasonLaunchPending {
		t.Fatalf("Ready condition %+v; want reason %s once subscribed", ready, reconciler.ReasonLaunchPending)
	}

	s.restart()
	testutil.WaitFor(t, 30*time.Second, "the restarted scheduler to resume the framework", func() bool {
		ids := activeFrameworks(t, c)
		return strings.Contains(s.readyz(), "[+]mesos ok") && len(ids) == 1 && ids[0] == frameworks[0]
	})
}
