package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// Tokens of the auth tests, besides the admin token of newAPI.
const (
	readerToken     = "reader-secret"
	teamToken       = "team-a-secret"
	teamReaderToken = "team-a-reader-secret"
)

func fileTokens() []apiserver.FileToken {
	return []apiserver.FileToken{
		{SHA256: apiserver.HashToken(readerToken), APIToken: spec.APIToken{Name: "reader", Role: spec.RoleReadOnly}},
		{SHA256: apiserver.HashToken(teamToken), APIToken: spec.APIToken{Name: "team-a", Role: spec.RoleAdmin, Namespaces: []string{"team-a"}}},
		{SHA256: apiserver.HashToken(teamReaderToken), APIToken: spec.APIToken{Name: "team-a-reader", Role: spec.RoleReadOnly, Namespaces: []string{"team-a"}}},
	}
}

// newAuthAPI serves the whole API (legacy and metrics included) with the
// tokens above, tokens in etcd, and the given anonymous endpoints.
func newAuthAPI(t *testing.T, anonymous []string) (*apiTest, *apiserver.Server) {
	cli := testutil.EtcdClient(t, testutil.EmbeddedEtcd(t))
	line, err := seal.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.ParseRing([]byte(line + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(cli, "/mysos").WithSealer(ring) // as the scheduler runs it
	h, err := apiserver.New(apiserver.Config{
		Store: st, Credentials: st, Status: st, Events: st, Legacy: st, Tokens: st, Quotas: st,
		Token: token, FileTokens: fileTokens(), Anonymous: anonymous, RouterPorts: spec.DefaultRouterPorts,
		Backups: backupService{Store: st, Backups: reconciler.Backups{DefaultDestination: "file://" + t.TempDir()}},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("# metrics\n")) }),
		Checks:  []apiserver.Check{{Name: "etcd", Required: true, Run: st.Ping}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &apiTest{t: t, srv: srv, store: st, etcd: cli}, h
}

// concrete turns a route pattern into a method and a path in namespace
// team-b, which the team-a tokens do not cover.
func concrete(pattern string) (method, path string) {
	method, path, found := strings.Cut(pattern, " ")
	if !found {
		method, path = "GET", pattern
	}
	if path == "/api/" {
		path = "/api/v1/no-such-thing"
	}
	r := strings.NewReplacer("{$}", "", "{namespace}", "team-b", "{name}", "shop", "{instance}", "shop-0",
		"{id}", "20240101T000000Z", "{token}", "someone")
	return method, r.Replace(path)
}

func bearer(tok string) string { return "Bearer " + tok }

// TestEveryRouteChecksTokens walks the whole route table: without a token
// or with an unknown one every route but the legacy ones answers 401; with
// a token of the wrong role or namespace 403; with the right one neither.
func TestEveryRouteChecksTokens(t *testing.T) {
	a, srv := newAuthAPI(t, []string{})
	routes := srv.Routes()
	if len(routes) < 25 {
		t.Fatalf("route table has %d routes; the walk would miss some", len(routes))
	}
	for _, rt := range routes {
		method, path := concrete(rt.Pattern)
		t.Run(rt.Pattern, func(t *testing.T) {
			if method != http.MethodGet && rt.Access != apiserver.AccessWrite &&
				rt.Access != apiserver.AccessClusterAdmin && rt.Access != apiserver.AccessLegacy {
				t.Fatalf("%s changes something but needs only %q access", rt.Pattern, rt.Access)
			}
			code, _ := a.do(method, path, "application/json", "{}", "")
			if rt.Access == apiserver.AccessLegacy {
				if code == http.StatusUnauthorized || !strings.HasPrefix(path, "/clusters/") {
					t.Fatalf("legacy route %s: %d; want the original's token-less API, and only under /clusters/", rt.Pattern, code)
				}
				return
			}
			expectCode(t, a, method, path, "", http.StatusUnauthorized)
			expectCode(t, a, method, path, bearer("not-a-token"), http.StatusUnauthorized)
			expectCode(t, a, method, path, "Basic "+token, http.StatusUnauthorized)
			switch rt.Access {
			case apiserver.AccessPublic, apiserver.AccessRead:
				expectAllowed(t, a, method, path, bearer(readerToken))
				if strings.Contains(rt.Pattern, "{namespace}") {
					expectCode(t, a, method, path, bearer(teamReaderToken), http.StatusForbidden)
				}
			case apiserver.AccessWrite:
				expectCode(t, a, method, path, bearer(readerToken), http.StatusForbidden)
				expectCode(t, a, method, path, bearer(teamToken), http.StatusForbidden)
				expectAllowed(t, a, method, path, bearer(token))
			case apiserver.AccessClusterAdmin:
				expectCode(t, a, method, path, bearer(readerToken), http.StatusForbidden)
				expectCode(t, a, method, path, bearer(teamToken), http.StatusForbidden)
				expectAllowed(t, a, method, path, bearer(token))
			default:
				t.Fatalf("unknown access %q", rt.Access)
			}
		})
	}
}

func expectCode(t *testing.T, a *apiTest, method, path, auth string, want int) {
	t.Helper()
	code, body := a.do(method, path, "application/json", "{}", auth)
	if code != want {
		t.Fatalf("%s %s with %q: %d %s; want %d", method, path, auth, code, body, want)
	}
	if st := decodeStatus(t, body); !strings.Contains(st.Message, "token") {
		t.Fatalf("%s %s: message %q does not say what is wrong with the token", method, path, st.Message)
	}
}

func expectAllowed(t *testing.T, a *apiTest, method, path, auth string) {
	t.Helper()
	if code, body := a.do(method, path, "application/json", "{}", auth); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("%s %s with %q: %d %s; want it let through", method, path, auth, code, body)
	}
}

// TestAnonymousEndpointsAreConfigurable: by default probes, version,
// metrics and the status page need no token; listed ones only are public.
func TestAnonymousEndpointsAreConfigurable(t *testing.T) {
	open, _ := newAuthAPI(t, nil)
	for _, p := range []string{"/", "/healthz", "/readyz", "/version", "/metrics"} {
		if code, body := open.do("GET", p, "", "", ""); code != http.StatusOK {
			t.Errorf("default: GET %s without a token: %d %s; want 200", p, code, body)
		}
	}
	if code, _ := open.do("GET", "/api/v1/clusters", "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("default: GET /api/v1/clusters without a token: %d; want 401", code)
	}
	some, _ := newAuthAPI(t, []string{apiserver.EndpointHealthz})
	if code, _ := some.do("GET", "/healthz", "", "", ""); code != http.StatusOK {
		t.Errorf("healthz public: %d; want 200", code)
	}
	for _, p := range []string{"/metrics", "/readyz", "/"} {
		if code, _ := some.do("GET", p, "", "", ""); code != http.StatusUnauthorized {
			t.Errorf("only healthz public: GET %s: %d; want 401", p, code)
		}
	}
	if _, err := apiserver.New(apiserver.Config{Token: token, Anonymous: []string{"clusters"}}); err == nil ||
		!strings.Contains(err.Error(), "healthz") {
		t.Errorf("unknown anonymous endpoint: %v; want an error listing the choices", err)
	}
}

// TestNamespaceScopedTokens: a team's token sees and changes only its
// namespace, in lists too.
func TestNamespaceScopedTokens(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	for _, ns := range []string{"team-a", "team-b"} {
		if code, body := a.do("POST", "/api/v1/namespaces/"+ns+"/clusters", "application/yaml", validYAML); code != http.StatusCreated {
			t.Fatalf("admin creates in %s: %d %s", ns, code, body)
		}
	}
	code, body := a.do("GET", "/api/v1/clusters", "", "", bearer(teamReaderToken))
	var list spec.MySQLClusterList
	if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
		t.Fatalf("team lists all: %d %s", code, body)
	}
	if len(list.Items) != 1 || list.Items[0].Metadata.Namespace != "team-a" {
		t.Fatalf("team-a's token listed %d clusters (%+v); want only team-a's", len(list.Items), list.Items)
	}
	if code, body := a.do("DELETE", "/api/v1/namespaces/team-b/clusters/shop", "", "", bearer(teamToken)); code != http.StatusForbidden ||
		!strings.Contains(body, `namespace \"team-b\"`) {
		t.Fatalf("team-a deletes team-b's cluster: %d %s; want 403 naming the namespace", code, body)
	}
	if code, body := a.do("GET", "/api/v1/namespaces/team-a/clusters/shop/credentials", "", "", bearer(teamReaderToken)); code != http.StatusForbidden ||
		!strings.Contains(body, "role admin") {
		t.Fatalf("read-only token reads passwords: %d %s; want 403 saying it needs admin", code, body)
	}
	if code, body := a.do("GET", "/api/v1/namespaces/team-a/clusters/shop/credentials", "", "", bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("team-a admin reads its passwords: %d %s", code, body)
	}
	if code, body := a.do("DELETE", "/api/v1/namespaces/team-a/clusters/shop", "", "", bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("team-a deletes its cluster: %d %s", code, body)
	}
}

// TestTokensCreatedThroughTheAPI: an admin makes a token, which works at
// once with its role, is listed without its secret, is never stored in
// the clear, and stops working when deleted.
func TestTokensCreatedThroughTheAPI(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	code, body := a.do("POST", "/api/v1/tokens", "application/json", `{"name":"ci","role":"read-only","namespaces":["team-a"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create token: %d %s", code, body)
	}
	var created spec.APIToken
	if err := json.Unmarshal([]byte(body), &created); err != nil || len(created.Token) < 32 || created.Source != "etcd" {
		t.Fatalf("created token %s: want its secret and source etcd (%v)", body, err)
	}
	if code, body := a.do("GET", "/api/v1/whoami", "", "", bearer(created.Token)); code != http.StatusOK ||
		!strings.Contains(body, `"name": "ci"`) || !strings.Contains(body, `"read-only"`) {
		t.Fatalf("whoami with the new token: %d %s", code, body)
	}
	if code, _ := a.do("POST", "/api/v1/namespaces/team-a/clusters", "application/yaml", validYAML, bearer(created.Token)); code != http.StatusForbidden {
		t.Fatalf("read-only token creates a cluster: %d; want 403", code)
	}
	code, body = a.do("GET", "/api/v1/tokens", "", "")
	if code != http.StatusOK || strings.Contains(body, created.Token) || !strings.Contains(body, `"ci"`) || !strings.Contains(body, `"team-a-reader"`) {
		t.Fatalf("list tokens: %d %s; want file and etcd tokens, no secret", code, body)
	}
	for _, kv := range dumpEtcd(t, a.etcd) {
		if strings.Contains(kv, created.Token) {
			t.Fatalf("etcd holds the token in the clear: %s", kv)
		}
	}
	for _, bad := range []string{`{"name":"ci","role":"admin"}`, `{"name":"reader","role":"admin"}`} {
		if code, body := a.do("POST", "/api/v1/tokens", "application/json", bad); code != http.StatusConflict {
			t.Fatalf("create %s: %d %s; want 409", bad, code, body)
		}
	}
	for bad, want := range map[string]string{
		`{"name":"x","role":"root"}`:                    "role",
		`{"name":"Bad Name","role":"admin"}`:            "name",
		`{"name":"x","role":"admin","namespaces":[""]}`: "namespaces[0]",
		`{"name":"x","role":"admin","extra":1}`:         "extra",
		`{"name":"x","role":"admin","token":"mine"}`:    "set by the server",
	} {
		if code, body := a.do("POST", "/api/v1/tokens", "application/json", bad); code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("create %s: %d %s; want 400 naming %q", bad, code, body, want)
		}
	}
	if code, body := a.do("DELETE", "/api/v1/tokens/ci", "", ""); code != http.StatusOK {
		t.Fatalf("delete token: %d %s", code, body)
	}
	if code, _ := a.do("GET", "/api/v1/whoami", "", "", bearer(created.Token)); code != http.StatusUnauthorized {
		t.Fatalf("deleted token: %d; want 401", code)
	}
	if code, _ := a.do("DELETE", "/api/v1/tokens/reader", "", ""); code != http.StatusConflict {
		t.Fatalf("delete a file token: %d; want 409 (it is defined in a file)", code)
	}
}

// dumpEtcd returns every key and value in etcd, one "key=value" each.
func dumpEtcd(t *testing.T, cli *clientv3.Client) []string {
	t.Helper()
	resp, err := cli.Get(context.Background(), "", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

func TestTokensFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `tokens:
- {name: ops, role: admin, token: s3cret}
- {name: team-a, role: read-only, namespaces: [team-a], sha256: `+apiserver.HashToken("other")+`}
`, 0o600)
	tokens, err := apiserver.LoadTokensFile(good)
	if err != nil || len(tokens) != 2 || tokens[0].SHA256 != apiserver.HashToken("s3cret") || tokens[1].Namespaces[0] != "team-a" {
		t.Fatalf("LoadTokensFile = %+v, %v", tokens, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string
	}{
		"open.yaml":    {"tokens:\n- {name: ops, role: admin, token: s3cret}\n", 0o644, "chmod 600"},
		"both.yaml":    {"tokens:\n- {name: ops, role: admin, token: a, sha256: b}\n", 0o600, "not both"},
		"hash.yaml":    {"tokens:\n- {name: ops, role: admin, sha256: xyz}\n", 0o600, "64 hex digits"},
		"role.yaml":    {"tokens:\n- {name: ops, role: god, token: a}\n", 0o600, "role"},
		"unknown.yaml": {"tokens:\n- {name: ops, role: admin, token: a, rolez: x}\n", 0o600, "rolez"},
	} {
		if _, err := apiserver.LoadTokensFile(write(name, c.content, c.mode)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", name, err, c.want)
		}
	}
	dup := []apiserver.FileToken{
		{SHA256: apiserver.HashToken("a"), APIToken: spec.APIToken{Name: "x", Role: spec.RoleAdmin}},
		{SHA256: apiserver.HashToken("a"), APIToken: spec.APIToken{Name: "y", Role: spec.RoleAdmin}},
	}
	if _, err := apiserver.New(apiserver.Config{FileTokens: dup}); err == nil || !strings.Contains(err.Error(), "same secret") {
		t.Fatalf("two names for one secret: %v", err)
	}
}

// TestWritesAreAuditLogged: a change is logged with the token that made it
// and how it ended; a refused one too, and no secret appears.
func TestWritesAreAuditLogged(t *testing.T) {
	var buf bytes.Buffer
	st := store.New(testutil.EtcdClient(t, testutil.EmbeddedEtcd(t)), "/mysos")
	h, err := apiserver.New(apiserver.Config{Store: st, Tokens: st, Token: token, FileTokens: fileTokens(),
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	a := &apiTest{t: t, srv: srv, store: st}
	if code, body := a.do("POST", "/api/v1/namespaces/team-a/clusters", "application/yaml", validYAML, bearer(teamToken)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _ := a.do("DELETE", "/api/v1/namespaces/team-a/clusters/shop", "", "", bearer(readerToken)); code != http.StatusForbidden {
		t.Fatalf("read-only delete: %d", code)
	}
	a.do("GET", "/api/v1/namespaces/team-a/clusters/shop", "", "", bearer(readerToken))
	log := buf.String()
	for _, want := range []string{
		"method=POST path=/api/v1/namespaces/team-a/clusters code=201 token=team-a",
		"method=DELETE path=/api/v1/namespaces/team-a/clusters/shop code=403 token=reader",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "method=GET") {
		t.Errorf("reads are logged at info level:\n%s", log)
	}
	for _, secret := range []string{token, teamToken, readerToken} {
		if strings.Contains(log, secret) {
			t.Fatalf("a token appears in the log:\n%s", log)
		}
	}
}

// TestTeamsDoNotGetMysosAccounts: a namespace's admin reads its users'
// passwords, not those of Mysos' own accounts (mysos_admin can do anything
// on the server).
func TestTeamsDoNotGetMysosAccounts(t *testing.T) {
	a, _ := newAuthAPI(t, []string{})
	if code, body := a.do("POST", "/api/v1/namespaces/team-a/clusters", "application/yaml", validYAML); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	const path = "/api/v1/namespaces/team-a/clusters/shop/credentials"
	if code, body := a.do("GET", path+"?all=true", "", "", bearer(teamToken)); code != http.StatusForbidden || !strings.Contains(body, "every namespace") {
		t.Fatalf("team admin asks for Mysos' accounts: %d %s; want 403", code, body)
	}
	if code, body := a.do("GET", path, "", "", bearer(teamToken)); code != http.StatusOK {
		t.Fatalf("team admin reads its users: %d %s", code, body)
	}
	if code, body := a.do("GET", path+"?all=true", "", ""); code != http.StatusOK {
		t.Fatalf("admin of every namespace: %d %s", code, body)
	}
}
