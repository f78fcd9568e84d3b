package ctl

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// credentialsAPI serves one cluster's credentials, with caCert when set.
func credentialsAPI(t *testing.T, caCert string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/default/clusters/shop/credentials" || r.Header.Get("Authorization") != "Bearer "+fakeToken {
			writeFakeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "not found")
			return
		}
		writeFakeJSON(w, http.StatusOK, spec.Credentials{APIVersion: spec.APIVersion, Kind: spec.CredentialsKind, Namespace: "default",
			Cluster: "shop", Primary: "10.0.0.1:31000", Users: []spec.Credential{{User: "app", Password: "pw-app"}}, CACert: caCert})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func runCtl(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, env := range []string{"MYSOS_CONFIG", "MYSOS_SERVER", "MYSOS_TOKEN", "MYSOS_TOKEN_FILE", "MYSOS_NAMESPACE"} {
		t.Setenv(env, "")
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Execute(ctx, append([]string{"--server", url, "--token", fakeToken}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCredentialsTLS: the CA certificate of a cluster with spec.tls is
// printed (-o ca) or written (--ca-file), and the suggested command line
// verifies the server with it; a cluster without TLS says why it has none.
func TestCredentialsTLS(t *testing.T) {
	url := credentialsAPI(t, testCA)
	if code, out, errOut := runCtl(t, url, "credentials", "shop", "-o", "ca"); code != 0 || out != testCA {
		t.Fatalf("-o ca: exit %d, %q (%s)", code, out, errOut)
	}
	file := filepath.Join(t.TempDir(), "shop ca.pem")
	code, out, errOut := runCtl(t, url, "credentials", "shop", "--ca-file", file)
	if code != 0 {
		t.Fatalf("--ca-file: exit %d (%s)", code, errOut)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != testCA {
		t.Fatalf("the CA file holds %q (%v)", b, err)
	}
	if want := "mariadb -h 10.0.0.1 -P 31000 -u app -p --ssl-ca='" + file + "' --ssl-verify-server-cert"; !strings.Contains(out, want) {
		t.Fatalf("table:\n%s\nwant the line %q", out, want)
	}
	code, out, errOut = runCtl(t, url, "credentials", "shop")
	if code != 0 || !strings.Contains(out, "--ssl-ca=shop-ca.pem --ssl-verify-server-cert") || !strings.Contains(errOut, "--ca-file shop-ca.pem") {
		t.Fatalf("table without --ca-file: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runCtl(t, url, "credentials", "shop", "-o", "json"); code != 0 || !strings.Contains(out, `"caCertificate"`) {
		t.Fatalf("-o json: exit %d\n%s", code, out)
	}

	plain := credentialsAPI(t, "")
	code, out, _ = runCtl(t, plain, "credentials", "shop")
	if code != 0 || strings.Contains(out, "--ssl") {
		t.Fatalf("a cluster without TLS: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCtl(t, plain, "credentials", "shop", "-o", "ca"); code == 0 || !strings.Contains(errOut, "spec.tls.enabled") {
		t.Fatalf("-o ca without TLS: exit %d, %s", code, errOut)
	}
}
