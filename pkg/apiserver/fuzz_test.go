package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/apiserver"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/reconciler"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// fuzzBackups keeps the fuzzer's destinations inside the test's directory
// and off the network: it opens file destinations under root only, and no
// HDFS. Everything else is the real backup service over the store.
type fuzzBackups struct {
	backupService
	root string
}

func (b fuzzBackups) Open(dest string) (backup.Target, error) {
	u, err := url.Parse(dest)
	if err != nil || u.Scheme != "file" || !strings.HasPrefix(filepath.Clean(u.Path)+"/", b.root+"/") {
		return nil, fmt.Errorf("this test opens file destinations under %s only, not %s", b.root, dest)
	}
	return b.backupService.Open(dest)
}

// FuzzAPI sends fuzzed requests (method, path, Content-Type, body) with the
// right token to the real handler over a real store (embedded etcd, one for
// the whole run) holding a Ready cluster, and checks that:
//
//   - nothing panics;
//   - no answer is a 5xx other than 503 ServiceUnavailable (an outage of
//     the store or a backup destination, which this test does not cause);
//   - every 4xx and 5xx under /api/ is a JSON Status carrying its code, a
//     reason and a message, none of it a terminal escape or other control
//     or invisible character;
//   - a cluster the API answers 2xx to a create or an update of is valid.
//
// The seed corpus is testdata/fuzz/FuzzAPI, valid requests and every case
// of testdata/badinput with a body of at most 16 KiB. The server has every
// optional store but Tokens: POST /api/v1/tokens still names an invalid
// token in its message unescaped (writeInvalidObject's quoteName).
func FuzzAPI(f *testing.F) {
	st := store.New(testutil.EtcdClient(f, testutil.EmbeddedEtcd(f)), "/mysos")
	root := f.TempDir()
	h, err := apiserver.New(apiserver.Config{
		Store: st, Credentials: st, Status: st, Events: st, Legacy: st, Quotas: st, Tokens: st, Token: token,
		ExternalURL: "http://mysos.example:55001",
		Backups: fuzzBackups{root: root, backupService: backupService{Store: st,
			Backups: reconciler.Backups{DefaultDestination: "file://" + root}}},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}
	send := func(method, path, contentType string, body []byte) (*httptest.ResponseRecorder, bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "http://mysos.test"+path, bytes.NewReader(body))
		if err != nil {
			return nil, false // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec, true
	}
	if rec, _ := send("POST", clustersPath, "application/yaml", []byte(storedYAML)); rec.Code != http.StatusCreated {
		f.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	c, err := st.Get(context.Background(), "default", "shop")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.UpdateStatus(context.Background(), "default", "shop", c.Metadata.UID, func(s *spec.ClusterStatus) error {
		makeReady(s)
		return nil
	}); err != nil {
		f.Fatal(err)
	}

	f.Add("GET", clustersPath+"/shop", "", []byte(nil))
	f.Add("PUT", clustersPath+"/shop", "application/yaml", []byte(strings.Replace(storedYAML, "replicas: 3", "replicas: 5", 1)))
	f.Add("POST", clustersPath+"?dryRun=All", "application/json",
		[]byte(`{"apiVersion": "mysos.io/v1alpha1", "kind": "MySQLCluster", "metadata": {"name": "other"}, "spec": {"replicas": 1}}`))
	f.Add("POST", clustersPath+"/shop/switchover", "application/json", []byte(`{"to": "shop-1"}`))
	f.Add("GET", clustersPath+"/shop/backups?destination="+url.QueryEscape("file://"+root+"/elsewhere"), "", []byte(nil))
	f.Add("GET", "/api/v1/clusters?labelSelector=team%3Dshop", "", []byte(nil))
	f.Add("DELETE", clustersPath+"/shop?dryRun=All", "", []byte(nil))
	f.Add("PUT", "/api/v1/namespaces/default/quota", "application/json", []byte(`{"hard": {"instances": 20, "cpus": "8", "mem": "32Gi", "disk": "500Gi"}}`))
	f.Add("GET", "/api/v1/namespaces/default/quota", "", []byte(nil))
	for _, c := range loadBadCases(f) {
		if len(c.body) <= 16<<10 {
			f.Add(c.method, c.path, c.contentType, c.body)
		}
	}

	f.Fuzz(func(t *testing.T, method, path, contentType string, body []byte) {
		rec, ok := send(method, path, contentType, body)
		if !ok {
			return
		}
		code, raw := rec.Code, rec.Body.Bytes()
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d %s", method, path, code, shorten(string(raw)))
		}
		apiPath := strings.HasPrefix(strings.SplitN(path, "?", 2)[0], "/api/")
		if code >= 400 && apiPath {
			st, err := statusOf(code, raw)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if code >= 500 && st.Reason != spec.ReasonServiceUnavailable {
				t.Fatalf("%s %s: %d with reason %s: %s", method, path, code, st.Reason, st.Message)
			}
		}
		if code/100 == 2 && (method == "POST" || method == "PUT") && isClusterPath(path) {
			var c spec.MySQLCluster
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatalf("%s %s: %d but not a cluster: %v", method, path, code, err)
			}
			if errs := spec.Validate(&c); len(errs) > 0 {
				t.Fatalf("%s %s accepted an invalid cluster: %v\n%s", method, path, errs, shorten(string(raw)))
			}
		}
	})
}

// isClusterPath tells a cluster collection or cluster path (as opposed to
// its subresources) from the others.
func isClusterPath(p string) bool {
	u, err := url.Parse(p)
	if err != nil {
		return false
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	return len(parts) >= 5 && len(parts) <= 6 && parts[0] == "api" && parts[1] == "v1" && parts[2] == "namespaces" && parts[4] == "clusters"
}
