package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/store"
)

// TestSecureExternalEtcd: with the CA, a client certificate and the user's
// password the store works; without the certificate or with a wrong
// password it does not.
func TestSecureExternalEtcd(t *testing.T) {
	e := testutil.StartSecureEtcd(t)
	dir := t.TempDir()
	good := writeSecret(t, dir, "pw", e.Password+"\n")
	opts := store.ClientOptions{Endpoints: e.Endpoints, CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		Username: e.User, PasswordFile: good, DialTimeout: 5 * time.Second}
	cfg, err := opts.Config()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := store.New(cli, "/secure").Ping(context.Background()); err != nil {
		t.Fatalf("ping with TLS and a user: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/secure/x", "1"); err != nil {
		t.Fatalf("put with TLS and a user: %v", err)
	}

	wrong := opts
	wrong.PasswordFile = writeSecret(t, dir, "wrong", "nope")
	if cfg, err := wrong.Config(); err != nil {
		t.Fatal(err)
	} else if cli, err := clientv3.New(cfg); err == nil {
		defer cli.Close()
		if _, err := cli.Put(ctx, "/secure/y", "1"); err == nil {
			t.Fatal("a wrong etcd password was accepted")
		}
	}
	noCert := opts
	noCert.CertFile, noCert.KeyFile = "", ""
	cfg, err = noCert.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialTimeout = time.Second
	if cli, err := clientv3.New(cfg); err == nil {
		defer cli.Close()
		short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := cli.Get(short, "/secure/x"); err == nil {
			t.Fatal("etcd answered a client without a certificate")
		}
	}
	for _, bad := range []store.ClientOptions{
		{Endpoints: e.Endpoints, Username: "root"},
		{Endpoints: e.Endpoints, PasswordFile: good},
		{Endpoints: e.Endpoints, CertFile: e.CertFile},
		{Endpoints: e.Endpoints, CAFile: filepath.Join(dir, "missing.pem")},
	} {
		if _, err := bad.Config(); err == nil || !strings.Contains(err.Error(), "--etcd-") {
			t.Errorf("%+v: %v; want an error naming the flag", bad, err)
		}
	}
}

func TestEmbeddedEtcdServesOnlyLoopbackUnlessAllowed(t *testing.T) {
	for _, u := range []string{"http://0.0.0.0:2479", "http://192.0.2.1:2479", "http://mysos.example:2479"} {
		_, err := store.StartEmbedded(store.EmbeddedConfig{Dir: t.TempDir(), ClientURL: u, PeerURL: "http://127.0.0.1:2480"})
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("embedded etcd on %s: %v; want refused", u, err)
		}
	}
}

func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
