package ctl

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

// completeAfter plays a reconciler that finishes the operation at the n-th
// look: the target (or shop-2 when Mysos chooses) becomes the primary.
func completeAfter(n int) func(c *spec.MySQLCluster, gets int) {
	return func(c *spec.MySQLCluster, gets int) {
		op := c.Status.Operation
		if op == nil || gets < n {
			if op != nil {
				op.Step = spec.StepCatchingUp
			}
			return
		}
		c.Status.CurrentPrimary = op.To
		if op.To == "" {
			c.Status.CurrentPrimary = "shop-2"
		}
		c.Status.Operation = nil
	}
}

func TestSwitchoverWaits(t *testing.T) {
	f := newFakeAPI(t)
	f.react = completeAfter(3)
	out := f.mustRun("switchover", "shop", "--to", "shop-1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "mysqlcluster.mysos.io/shop switchover switchover-20261126T101500123Z accepted: shop-0 → shop-1" ||
		!strings.HasPrefix(lines[1], "shop-1 is the primary; the switchover took ") || !strings.HasSuffix(lines[1], "ms") {
		t.Fatalf("output:\n%s", out)
	}
	if n := f.looks(); n < 3 {
		t.Fatalf("returned after %d looks; the switchover ended at the third", n)
	}
}

func TestSwitchoverWithoutTarget(t *testing.T) {
	f := newFakeAPI(t)
	f.react = completeAfter(1)
	out := f.mustRun("switchover", "shop")
	if !strings.Contains(out, "accepted: shop-0 → the most up-to-date replica\n") || !strings.Contains(out, "shop-2 is the primary;") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestSwitchoverNoWait(t *testing.T) {
	f := newFakeAPI(t)
	out := f.mustRun("switchover", "shop", "--wait=false")
	if n := f.looks(); strings.Count(out, "\n") != 1 || !strings.Contains(out, "accepted") || n != 0 {
		t.Fatalf("output %q after %d looks; want only the acceptance, no polling", out, n)
	}
}

func TestSwitchoverTimesOut(t *testing.T) {
	f := newFakeAPI(t)
	f.react = func(c *spec.MySQLCluster, _ int) {
		if op := c.Status.Operation; op != nil {
			op.Step, op.Blocked = spec.StepCatchingUp, "shop-1 has 3 transactions to apply"
		}
	}
	start := time.Now()
	errOut := f.mustFail("switchover", "shop", "--to", "shop-1", "--timeout", "300ms")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a 300ms timeout took %s", took)
	}
	for _, want := range []string{"timed out after 300ms", "switchover-20261126T101500123Z", "step CatchingUp", "3 transactions to apply", "mysosctl events shop"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not say %q", errOut, want)
		}
	}
}

// TestSwitchoverThatFailed: the operation ended with the old primary still
// in place; the error says why, from what blocked it or from its newest
// warning.
func TestSwitchoverThatFailed(t *testing.T) {
	giveUp := func(blocked string) func(c *spec.MySQLCluster, gets int) {
		return func(c *spec.MySQLCluster, gets int) {
			if c.Status.Operation == nil {
				return
			}
			if gets == 1 {
				c.Status.Operation.Blocked = blocked
				return
			}
			c.Status.Operation = nil
		}
	}
	f := newFakeAPI(t)
	f.react = giveUp("shop-1 stopped replicating")
	if errOut := f.mustFail("switchover", "shop", "--to", "shop-1"); !strings.Contains(errOut, "shop-0 is still the primary: shop-1 stopped replicating") {
		t.Fatalf("stderr: %s", errOut)
	}

	f = newFakeAPI(t)
	f.react = giveUp("")
	f.events = []spec.Event{
		{Namespace: "default", Cluster: "shop", Type: spec.EventWarning, Operation: "switchover-older", Message: "an older warning"},
		{Namespace: "default", Cluster: "shop", Type: spec.EventWarning, Operation: "switchover-20261126T101500123Z", Message: "shop-1 lags by 40s"},
		{Namespace: "default", Cluster: "shop", Type: spec.EventNormal, Operation: "switchover-20261126T101500123Z", Message: "primary writable again"},
	}
	if errOut := f.mustFail("switchover", "shop", "--to", "shop-1"); !strings.Contains(errOut, "still the primary: shop-1 lags by 40s") {
		t.Fatalf("stderr: %s", errOut)
	}
}

func TestSwitchoverRefused(t *testing.T) {
	f := newFakeAPI(t)
	f.refuse = &spec.Status{APIVersion: "v1", Kind: "Status", Status: "Failure", Code: http.StatusConflict, Reason: spec.ReasonConflict,
		Message: "cluster default/shop is not Ready"}
	if errOut := f.mustFail("switchover", "shop"); errOut != "error: cluster default/shop is not Ready\n" {
		t.Fatalf("stderr %q", errOut)
	}
	if errOut := f.mustFail("switchover", "absent"); !strings.Contains(errOut, "not found") {
		t.Fatalf("stderr %q", errOut)
	}
}

func TestFailoverAck(t *testing.T) {
	f := newFakeAPI(t)
	if errOut := f.mustFail("failover", "ack", "shop"); !strings.Contains(errOut, "no automatic failover") {
		t.Fatalf("stderr %q", errOut)
	}
	f.update(func(c *spec.MySQLCluster) {
		c.Status.LastFailover = &spec.FailoverRecord{ID: "failover-20261126T090000000Z", From: "shop-0", To: "shop-1", At: time.Now()}
	})
	out := f.mustRun("failover", "ack", "shop")
	if out != "mysqlcluster.mysos.io/shop failover failover-20261126T090000000Z acknowledged: the block window no longer applies\n" {
		t.Fatalf("output %q", out)
	}
	if !f.current().Status.LastFailover.Acknowledged {
		t.Fatal("nothing was acknowledged")
	}
}
