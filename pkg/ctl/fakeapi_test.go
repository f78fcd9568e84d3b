package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

const fakeToken = "ctl-test-token"

// fakeAPI is a scheduler API serving one cluster from memory, enough for
// the commands under test; react, when set, plays the reconciler on each
// GET of the cluster.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	cluster spec.MySQLCluster
	events  []spec.Event
	// eventsDown makes the events routes answer 503.
	eventsDown bool
	// refuse, when set, is the answer to a switchover request.
	refuse *spec.Status
	// react changes the cluster as the reconciler would; gets counts the
	// GETs of the cluster so far.
	react func(c *spec.MySQLCluster, gets int)
	gets  int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, cluster: readyCluster()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/clusters/{name}", f.get)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/clusters/{name}/switchover", f.switchover)
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/clusters/{name}/failover/ack", f.ack)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/clusters/{name}/events", f.listEvents)
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/events", f.listEvents)
	mux.HandleFunc("GET /api/v1/events", f.listEvents)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			writeFakeStatus(w, http.StatusUnauthorized, spec.ReasonUnauthorized, "bad token")
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func readyCluster() spec.MySQLCluster {
	created := time.Now().Add(-time.Hour)
	return spec.MySQLCluster{
		APIVersion: spec.APIVersion, Kind: spec.Kind,
		Metadata: spec.ObjectMeta{Name: "shop", Namespace: "default", UID: "u1", CreationTimestamp: &created},
		Status: spec.ClusterStatus{
			Phase: spec.PhaseRunning, CurrentPrimary: "shop-0",
			Instances:  []spec.InstanceStatus{{Name: "shop-0"}, {Name: "shop-1"}, {Name: "shop-2"}},
			Conditions: []spec.Condition{{Type: spec.ConditionReady, Status: spec.ConditionTrue}},
		},
	}
}

// update changes the cluster between commands.
func (f *fakeAPI) update(change func(c *spec.MySQLCluster)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.cluster)
}

// looks is how many times the cluster was read so far.
func (f *fakeAPI) looks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// current is the cluster as it stands.
func (f *fakeAPI) current() spec.MySQLCluster {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cluster
}

func (f *fakeAPI) found(w http.ResponseWriter, r *http.Request) bool {
	if r.PathValue("ns") == f.cluster.Metadata.Namespace && r.PathValue("name") == f.cluster.Metadata.Name {
		return true
	}
	writeFakeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "cluster "+r.PathValue("ns")+"/"+r.PathValue("name")+": not found")
	return false
}

func (f *fakeAPI) get(w http.ResponseWriter, r *http.Request) {
	if !f.found(w, r) {
		return
	}
	f.gets++
	if f.react != nil {
		f.react(&f.cluster, f.gets)
	}
	writeFakeJSON(w, http.StatusOK, f.cluster)
}

func (f *fakeAPI) switchover(w http.ResponseWriter, r *http.Request) {
	if !f.found(w, r) {
		return
	}
	if f.refuse != nil {
		writeFakeJSON(w, f.refuse.Code, f.refuse)
		return
	}
	var req spec.SwitchoverRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeFakeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, err.Error())
		return
	}
	op := spec.Operation{ID: "switchover-20261126T101500123Z", Kind: spec.OperationSwitchover, From: f.cluster.Status.CurrentPrimary,
		To: req.To, Step: spec.StepRequested, StartedAt: time.Now().UTC()}
	f.cluster.Status.Operation = &op
	writeFakeJSON(w, http.StatusAccepted, op)
}

func (f *fakeAPI) ack(w http.ResponseWriter, r *http.Request) {
	if !f.found(w, r) {
		return
	}
	rec := f.cluster.Status.LastFailover
	if rec == nil {
		writeFakeStatus(w, http.StatusConflict, spec.ReasonConflict, "cluster default/shop has had no automatic failover to acknowledge")
		return
	}
	rec.Acknowledged = true
	writeFakeJSON(w, http.StatusOK, rec)
}

func (f *fakeAPI) listEvents(w http.ResponseWriter, r *http.Request) {
	if f.eventsDown {
		writeFakeStatus(w, http.StatusServiceUnavailable, spec.ReasonServiceUnavailable, "etcd is down")
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("name")
	items := []spec.Event{}
	for _, ev := range f.events {
		if (ns == "" || ev.Namespace == ns) && (name == "" || ev.Cluster == name) {
			items = append(items, ev)
		}
	}
	writeFakeJSON(w, http.StatusOK, spec.EventList{APIVersion: spec.APIVersion, Kind: spec.EventListKind, Items: items})
}

func writeFakeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFakeStatus(w http.ResponseWriter, code int, reason, msg string) {
	writeFakeJSON(w, code, &spec.Status{APIVersion: "v1", Kind: "Status", Status: "Failure", Code: code, Reason: reason, Message: msg})
}

// run runs mysosctl against the fake API with a clean environment.
func (f *fakeAPI) run(args ...string) (code int, stdout, stderr string) {
	f.t.Helper()
	f.t.Setenv("HOME", f.t.TempDir())
	for _, env := range []string{"MYSOS_CONFIG", "MYSOS_SERVER", "MYSOS_TOKEN", "MYSOS_TOKEN_FILE", "MYSOS_NAMESPACE"} {
		f.t.Setenv(env, "")
	}
	var out, errOut bytes.Buffer
	args = append([]string{"--server", f.srv.URL, "--token", fakeToken}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = Execute(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs mysosctl and fails the test unless it exits 0.
func (f *fakeAPI) mustRun(args ...string) string {
	f.t.Helper()
	code, out, errOut := f.run(args...)
	if code != 0 {
		f.t.Fatalf("mysosctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustFail runs mysosctl, expects it to fail, and returns its stderr.
func (f *fakeAPI) mustFail(args ...string) string {
	f.t.Helper()
	code, out, errOut := f.run(args...)
	if code == 0 {
		f.t.Fatalf("mysosctl %s succeeded; want a failure\nstdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}
