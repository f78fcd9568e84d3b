package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// racingStore lets another apply land between the API's checks and its
// write: race runs just before each of the first `times` creates.
type racingStore struct {
	*store.Store
	times atomic.Int32
	race  func(n int32)
}

func (r *racingStore) Create(ctx context.Context, c *spec.MySQLCluster, conds ...store.Unchanged) (*spec.MySQLCluster, error) {
	if n := r.times.Add(-1); n >= 0 {
		r.race(n)
	}
	return r.Store.Create(ctx, c, conds...)
}

func newRacingAPI(t *testing.T, times int32, race func(st *store.Store, n int32)) *apiTest {
	st := store.New(testutil.EtcdClient(t, testutil.EmbeddedEtcd(t)), "/mysos")
	rs := &racingStore{Store: st}
	rs.times.Store(times)
	rs.race = func(n int32) { race(st, n) }
	h, err := apiserver.New(apiserver.Config{Store: rs, Quotas: st, Token: token, RouterPorts: spec.DefaultRouterPorts})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiTest{t: t, srv: srv, store: st}
}

func storeCluster(t *testing.T, st *store.Store, ns, name string, replicas int32, router *spec.RouterSpec) {
	t.Helper()
	c := &spec.MySQLCluster{APIVersion: spec.APIVersion, Kind: spec.Kind, Metadata: spec.ObjectMeta{Namespace: ns, Name: name},
		Spec: spec.ClusterSpec{Replicas: &replicas, Router: router}}
	spec.SetDefaults(c)
	if _, err := st.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestQuotaHoldsAgainstARacingApply: another apply lands between the quota
// check and the write; the write fails, is checked again, and is refused,
// so the two together never exceed the quota (without the condition both
// were stored).
func TestQuotaHoldsAgainstARacingApply(t *testing.T) {
	var a *apiTest
	a = newRacingAPI(t, 1, func(st *store.Store, _ int32) { storeCluster(a.t, st, "team-a", "racer", 1, nil) })
	const ns = "/api/v1/namespaces/team-a"
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":4}}`); code != http.StatusOK {
		t.Fatalf("set quota: %d %s", code, body)
	}
	storeCluster(t, a.store, "team-a", "one", 3, nil)
	code, body := a.do("POST", ns+"/clusters", "application/yaml", clusterYAML("two", 1, "512Mi"))
	if code != http.StatusForbidden || !strings.Contains(body, "instances: 5 would be in use, the limit is 4") {
		t.Fatalf("create raced past the quota: %d %s; want 403 once checked again", code, body)
	}
	clusters, _, err := a.store.List(context.Background(), "team-a")
	if err != nil || len(clusters) != 2 {
		t.Fatalf("stored %d clusters (%v); want one and the racer", len(clusters), err)
	}
}

// TestRouterPortHoldsAgainstARacingApply: another namespace's apply takes
// the port between the check and the write; the store's claim of the port
// fails and the answer is 400 naming the field, not a second owner.
func TestRouterPortHoldsAgainstARacingApply(t *testing.T) {
	var a *apiTest
	a = newRacingAPI(t, 1, func(st *store.Store, _ int32) {
		storeCluster(a.t, st, "team-b", "racer", 1, &spec.RouterSpec{ReadWritePort: 6446})
	})
	code, body := a.do("POST", "/api/v1/namespaces/team-a/clusters", "application/yaml", routedClusterYAML("one", 6446))
	if code != http.StatusBadRequest || !strings.Contains(body, "spec.router.readWritePort") || !strings.Contains(body, "taken by a cluster of another namespace") {
		t.Fatalf("create raced for a port: %d %s; want 400 naming the field", code, body)
	}
	// Ports need no condition on other clusters: an apply for another port
	// is not made to wait for one that raced it.
	var b *apiTest
	b = newRacingAPI(t, 1, func(st *store.Store, _ int32) {
		storeCluster(b.t, st, "team-b", "racer", 1, &spec.RouterSpec{ReadWritePort: 6446})
	})
	if code, body := b.do("POST", "/api/v1/namespaces/team-a/clusters", "application/yaml", routedClusterYAML("one", 6447)); code != http.StatusCreated {
		t.Fatalf("create for a free port while another apply took another: %d %s", code, body)
	}
}

// TestAnApplyRacedWithoutEndGivesUp: an apply whose quota check loses
// every race for the whole retry budget is answered 409 "apply again",
// having stored nothing.
func TestAnApplyRacedWithoutEndGivesUp(t *testing.T) {
	defer apiserver.SetAdmitRetryBudget(50 * time.Millisecond)()
	var a *apiTest
	a = newRacingAPI(t, 1<<20, func(st *store.Store, n int32) {
		storeCluster(a.t, st, "team-a", fmt.Sprintf("racer-%d", n), 1, nil)
	})
	const ns = "/api/v1/namespaces/team-a"
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":1000000}}`); code != http.StatusOK {
		t.Fatalf("set quota: %d %s", code, body)
	}
	code, body := a.do("POST", ns+"/clusters", "application/yaml", clusterYAML("one", 1, "512Mi"))
	if code != http.StatusConflict || !strings.Contains(body, "apply again") {
		t.Fatalf("create raced on every attempt: %d %s; want 409 saying to apply again", code, body)
	}
	if _, err := a.store.Get(context.Background(), "team-a", "one"); err == nil {
		t.Fatal("a create answered 409 was stored")
	}
}

// TestConcurrentAppliesAgainstAQuota: many applies at once in a namespace
// with a quota all land when the quota allows them (none is refused for
// having raced the others), and exactly as many as it allows land when it
// does not.
func TestConcurrentAppliesAgainstAQuota(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	const ns = "/api/v1/namespaces/team-a"
	applyAll := func(prefix string, n int) map[int]int {
		codes := make(chan int, n)
		for i := range n {
			go func() { // a.do would call t.Fatal off the test's goroutine
				req, _ := http.NewRequest("POST", a.srv.URL+ns+"/clusters", strings.NewReader(clusterYAML(fmt.Sprintf("%s-%d", prefix, i), 1, "128Mi")))
				req.Header.Set("Content-Type", "application/yaml")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					codes <- 0
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		got := map[int]int{}
		for range n {
			got[<-codes]++
		}
		return got
	}
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":1000}}`); code != http.StatusOK {
		t.Fatalf("set quota: %d %s", code, body)
	}
	if got := applyAll("roomy", 20); got[http.StatusCreated] != 20 {
		t.Fatalf("20 applies within the quota at once: %v; want all 201", got)
	}
	if code, body := a.do("PUT", ns+"/quota", "application/json", `{"hard":{"instances":25}}`); code != http.StatusOK {
		t.Fatalf("set quota: %d %s", code, body)
	}
	if got := applyAll("tight", 20); got[http.StatusCreated] != 5 || got[http.StatusForbidden] != 15 {
		t.Fatalf("20 applies at once with room for 5: %v; want 5 × 201 and 15 × 403", got)
	}
}
