package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mysos-project/mysos/pkg/store"
)

// TestEtcdPasswordNeedsTLS: --etcd-user/--etcd-password-file are
// accepted with http:// endpoints. etcd's client drops transport
// credentials for an http:// endpoint (even with --etcd-ca-file given), so
// the password, and then the auth token on every call and every sealed
// value, go over the network in clear.
func TestEtcdPasswordNeedsTLS(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("etcd-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.ClientOptions{Endpoints: []string{"http://etcd-1.example:2379"}, Username: "mysos", PasswordFile: pw}.Config()
	if err == nil {
		t.Error("an etcd password is accepted for a plaintext http:// endpoint")
	}
}
