package apiserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

const token = "test-token"

const validYAML = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: shop
spec:
  replicas: 3
`

type apiTest struct {
	t     *testing.T
	srv   *httptest.Server
	store *store.Store
	// etcd, when set, is the store's client, for tests that read it raw.
	etcd *clientv3.Client
	// backups is the default backup destination, a directory.
	backups string
}

// backupService serves backups from the store's jobs and file targets.
type backupService struct {
	*store.Store
	reconciler.Backups
}

func newAPI(t *testing.T) *apiTest {
	st := store.New(testutil.EtcdClient(t, testutil.EmbeddedEtcd(t)), "/mysos")
	backups := "file://" + t.TempDir()
	h, err := apiserver.New(apiserver.Config{
		Store: st, Credentials: st, Status: st, Events: st, Legacy: st, ExternalURL: "http://mysos.example:55001", Token: token,
		Backups: backupService{Store: st, Backups: reconciler.Backups{DefaultDestination: backups}},
		Checks: []apiserver.Check{
			{Name: "etcd", Required: true, Run: st.Ping},
			{Name: "mesos", Run: func(_ context.Context) error { return errors.New("not subscribed") }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiTest{t: t, srv: srv, store: st, backups: backups}
}

// do sends a request with the right token unless auth overrides it.
func (a *apiTest) do(method, path, contentType, body string, auth ...string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if len(auth) > 0 {
		req.Header.Set("Authorization", auth[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

const clustersPath = "/api/v1/namespaces/default/clusters"

func (a *apiTest) create(yaml string) spec.MySQLCluster {
	a.t.Helper()
	code, body := a.do("POST", clustersPath, "application/yaml", yaml)
	if code != http.StatusCreated {
		a.t.Fatalf("create: %d %s", code, body)
	}
	return decodeCluster(a.t, body)
}

func (a *apiTest) get(name string) (int, spec.MySQLCluster) {
	a.t.Helper()
	code, body := a.do("GET", clustersPath+"/"+name, "", "")
	if code != http.StatusOK {
		return code, spec.MySQLCluster{}
	}
	return code, decodeCluster(a.t, body)
}

func decodeCluster(t *testing.T, body string) spec.MySQLCluster {
	t.Helper()
	var c spec.MySQLCluster
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return c
}

func decodeStatus(t *testing.T, body string) spec.Status {
	t.Helper()
	var st spec.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" {
		t.Fatalf("not a Status body: %s (%v)", body, err)
	}
	return st
}

func TestCreateAppliesDefaultsAndGeneration(t *testing.T) {
	a := newAPI(t)
	c := a.create(validYAML)
	if c.Metadata.Generation != 1 || c.Metadata.Namespace != "default" || c.Spec.Flavor != spec.DefaultFlavor {
		t.Fatalf("created %+v; want generation 1, namespace default, defaults applied", c.Metadata)
	}
	if code, body := a.do("POST", clustersPath, "application/yaml", validYAML); code != http.StatusConflict ||
		decodeStatus(t, body).Reason != spec.ReasonAlreadyExists {
		t.Fatalf("duplicate create: %d %s; want 409 AlreadyExists", code, body)
	}
}

// TestBadInputChangesNothing sends every kind of bad request and checks the
// answer, then that the stored object is exactly as before.
func TestBadInputChangesNothing(t *testing.T) {
	a := newAPI(t)
	before := a.create(validYAML)
	path := clustersPath + "/shop"
	stale := strings.Replace(validYAML, "name: shop", "name: shop\n  resourceVersion: \"1\"", 1)
	stale = strings.Replace(stale, "replicas: 3", "replicas: 5", 1)
	cases := []struct {
		name, method, path, contentType, body, auth string
		code                                        int
		reason                                      string
		fields                                      []string
	}{
		{"no token", "PUT", path, "application/yaml", validYAML, "-", 401, spec.ReasonUnauthorized, nil},
		{"wrong token", "PUT", path, "application/yaml", validYAML, "Bearer nope", 401, spec.ReasonUnauthorized, nil},
		{"wrong content type", "PUT", path, "text/plain", validYAML, "", 415, spec.ReasonUnsupportedMediaType, nil},
		{"too large", "PUT", path, "application/yaml", validYAML + "# " + strings.Repeat("x", apiserver.MaxBodyBytes), "", 413, spec.ReasonTooLarge, nil},
		{"malformed yaml", "PUT", path, "application/yaml", "spec: [unclosed", "", 400, "", nil},
		{"unknown and mistyped fields", "PUT", path, "application/yaml",
			strings.Replace(validYAML, "replicas: 3", "replica: 3\n  resources: {mem: [1], cpus: \"-1\"}", 1), "", 400, spec.ReasonInvalid,
			[]string{"spec.replica", "spec.resources.mem", "spec.resources.cpus"}},
		{"invalid values", "PUT", path, "application/yaml",
			strings.Replace(validYAML, "replicas: 3", "replicas: -1\n  resources: {mem: 12Q, cpus: \"99999\"}", 1), "", 400, spec.ReasonInvalid,
			[]string{"spec.replicas", "spec.resources.mem", "spec.resources.cpus"}},
		{"wrong kind", "PUT", path, "application/yaml", strings.Replace(validYAML, "kind: MySQLCluster", "kind: Pod", 1), "", 400, spec.ReasonInvalid, []string{"kind"}},
		{"name differs from URL", "PUT", clustersPath + "/other", "application/yaml", validYAML, "", 400, spec.ReasonInvalid, []string{"metadata.name"}},
		{"invalid namespace in URL", "PUT", "/api/v1/namespaces/Bad_NS/clusters/shop", "application/yaml", validYAML, "", 400, spec.ReasonBadRequest, nil},
		{"stale resourceVersion", "PUT", path, "application/yaml", stale, "", 409, spec.ReasonConflict, nil},
		{"immutable field", "PUT", path, "application/yaml", strings.Replace(validYAML, "replicas: 3", "replicas: 3\n  flavor: mysql", 1), "", 400, spec.ReasonInvalid, []string{"spec.flavor"}},
		{"update of a missing cluster", "PUT", clustersPath + "/absent", "application/yaml", strings.Replace(validYAML, "name: shop", "name: absent", 1), "", 404, spec.ReasonNotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var auth []string
			switch tc.auth {
			case "-":
				auth = []string{""}
			case "":
			default:
				auth = []string{tc.auth}
			}
			code, body := a.do(tc.method, tc.path, tc.contentType, tc.body, auth...)
			if code != tc.code {
				t.Fatalf("got %d %s; want %d", code, body, tc.code)
			}
			st := decodeStatus(t, body)
			if tc.reason != "" && st.Reason != tc.reason {
				t.Fatalf("reason %q, want %q: %s", st.Reason, tc.reason, st.Message)
			}
			for _, field := range tc.fields {
				if !hasCause(st, field) {
					t.Errorf("no error names %s: %s", field, st.Message)
				}
			}
		})
	}
	_, after := a.get("shop")
	if after.Metadata.ResourceVersion != before.Metadata.ResourceVersion || *after.Spec.Replicas != 3 {
		t.Fatalf("bad input changed the stored object: rv %s→%s", before.Metadata.ResourceVersion, after.Metadata.ResourceVersion)
	}
}

func hasCause(st spec.Status, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

func TestDryRunStoresNothing(t *testing.T) {
	a := newAPI(t)
	code, body := a.do("POST", clustersPath+"?dryRun=All", "application/yaml", validYAML)
	if code != http.StatusOK || decodeCluster(t, body).Spec.Flavor == "" {
		t.Fatalf("dry-run create: %d %s; want 200 with defaults", code, body)
	}
	if code, _ := a.get("shop"); code != http.StatusNotFound {
		t.Fatalf("dry-run create stored the cluster (GET %d)", code)
	}
	before := a.create(validYAML)
	code, body = a.do("PUT", clustersPath+"/shop?dryRun=All", "application/yaml", strings.Replace(validYAML, "replicas: 3", "replicas: 5", 1))
	if code != http.StatusOK || decodeCluster(t, body).Metadata.Generation != 2 {
		t.Fatalf("dry-run update: %d %s; want 200 showing generation 2", code, body)
	}
	if code, _ = a.do("DELETE", clustersPath+"/shop?dryRun=All", "", ""); code != http.StatusOK {
		t.Fatalf("dry-run delete: %d", code)
	}
	_, after := a.get("shop")
	if after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Fatal("a dry run changed the stored object")
	}
}

func TestListFiltersByLabelAndNamespace(t *testing.T) {
	a := newAPI(t)
	a.create(strings.Replace(validYAML, "name: shop", "name: shop\n  labels: {team: a}", 1))
	a.create(strings.Replace(validYAML, "name: shop", "name: other\n  labels: {team: b}", 1))
	code, body := a.do("GET", clustersPath+"?labelSelector=team%3Da", "", "")
	var list spec.MySQLClusterList
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	if len(list.Items) != 1 || list.Items[0].Metadata.Name != "shop" {
		t.Fatalf("selector team=a returned %d items", len(list.Items))
	}
	if code, body := a.do("GET", "/api/v1/namespaces/elsewhere/clusters", "", ""); code != 200 || strings.Contains(body, `"shop"`) {
		t.Fatalf("another namespace sees default's clusters: %s", body)
	}
	if code, _ := a.do("GET", clustersPath+"?labelSelector=%3D%3D", "", ""); code != http.StatusBadRequest {
		t.Fatalf("bad selector: %d, want 400", code)
	}
}

func TestHealthEndpointsNeedNoToken(t *testing.T) {
	a := newAPI(t)
	if code, body := a.do("GET", "/healthz", "", "", ""); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	code, body := a.do("GET", "/readyz", "", "", "")
	if code != 200 || !strings.Contains(body, "[+]etcd ok") || !strings.Contains(body, "[!]mesos") {
		t.Fatalf("/readyz: %d %q; want ready with etcd ok and mesos reported", code, body)
	}
}

// TestCredentials: the generated passwords of the spec's users, and with
// all=true of Mysos' own accounts, for the token holder only.
func TestCredentials(t *testing.T) {
	a := newAPI(t)
	yaml := validYAML + "  users:\n    - name: app\n      databases: [shop]\n"
	if code, body := a.do("POST", "/api/v1/namespaces/default/clusters", "application/yaml", yaml); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	c, err := a.store.Get(context.Background(), "default", "shop")
	if err != nil {
		t.Fatal(err)
	}
	pw, err := a.store.EnsurePasswords(context.Background(), "default", "shop", c.Metadata.UID, "mysos_admin", "app")
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/namespaces/default/clusters/shop/credentials"
	code, body := a.do("GET", path, "", "")
	var got spec.Credentials
	if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
		t.Fatalf("credentials: %d %s", code, body)
	}
	if len(got.Users) != 1 || got.Users[0].User != "app" || got.Users[0].Password != pw["app"] {
		t.Fatalf("credentials %+v; want only app's", got.Users)
	}
	_, body = a.do("GET", path+"?all=true", "", "")
	if !strings.Contains(body, pw["mysos_admin"]) {
		t.Fatal("all=true left out Mysos' own account")
	}
	if code, body := a.do("GET", path, "", "", "Bearer wrong"); code != http.StatusUnauthorized || strings.Contains(body, pw["app"]) {
		t.Fatalf("a wrong token got %d", code)
	}
	if code, body := a.do("GET", "/api/v1/namespaces/default/clusters/shop", "", ""); code != http.StatusOK || strings.Contains(body, pw["app"]) {
		t.Fatal("the cluster object carries a password")
	}
}

// TestLegacyAPI: the original Mysos' create and delete, by form, without a
// bearer token, mapped onto a spec; the cluster password guards DELETE.
func TestLegacyAPI(t *testing.T) {
	a := newAPI(t)
	form := "cluster_user=mysos&num_nodes=3&cluster_password=testpasswd&size=" +
		`{"mem":"700mb","disk":"3gb","cpus":1.0}`
	code, body := a.do("POST", "/clusters/legacy", "application/x-www-form-urlencoded", form, "")
	var created map[string]string
	if err := json.Unmarshal([]byte(body), &created); code != http.StatusOK || err != nil || created["cluster_password"] != "testpasswd" ||
		created["cluster_url"] != "http://mysos.example:55001/api/v1/namespaces/default/clusters/legacy" {
		t.Fatalf("create: %d %s", code, body)
	}
	c, err := a.store.Get(context.Background(), "default", "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if *c.Spec.Replicas != 3 || c.Spec.Resources.Memory != "700Mi" || c.Spec.Resources.Disk != "3Gi" || c.Spec.Resources.CPUs != "1000m" ||
		len(c.Spec.Users) != 1 || c.Spec.Users[0].Name != "mysos" {
		t.Fatalf("spec %+v", c.Spec)
	}
	if pw, _ := a.store.Passwords(context.Background(), "default", "legacy", c.Metadata.UID); pw["mysos"] != "testpasswd" {
		t.Fatalf("stored password %q; want the one given", pw["mysos"])
	}
	if code, _ := a.do("POST", "/clusters/legacy", "application/x-www-form-urlencoded", form, ""); code != http.StatusConflict {
		t.Fatalf("second create: %d; want 409", code)
	}
	for _, bad := range []string{"num_nodes=2", "cluster_user=u&num_nodes=0", "cluster_user=u&size=%7B%7D", "cluster_user=u&size=" + `{"mem":"1xb","disk":"3gb","cpus":1}`} {
		if code, body := a.do("POST", "/clusters/bad", "application/x-www-form-urlencoded", bad, ""); code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s; want 400", bad, code, body)
		}
	}
	if code, _ := a.do("POST", "/clusters/gen", "application/x-www-form-urlencoded", "cluster_user=u", ""); code != http.StatusOK {
		t.Fatal("a cluster without a password given was refused")
	}
	if code, _ := a.do("DELETE", "/clusters/legacy", "application/x-www-form-urlencoded", "password=wrong", ""); code != http.StatusForbidden {
		t.Fatalf("delete with the wrong password: %d; want 403", code)
	}
	if code, _ := a.do("DELETE", "/clusters/nope", "application/x-www-form-urlencoded", "password=x", ""); code != http.StatusNotFound {
		t.Fatalf("delete of an unknown cluster: %d; want 404", code)
	}
	if code, body := a.do("DELETE", "/clusters/legacy", "application/x-www-form-urlencoded", "password=testpasswd", ""); code != http.StatusOK || !strings.Contains(body, "cluster_url") {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, err := a.store.Get(context.Background(), "default", "legacy"); err == nil {
		t.Fatal("the cluster survived its legacy delete")
	}
}
