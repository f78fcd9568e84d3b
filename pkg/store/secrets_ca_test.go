package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/store"
)

// TestClusterCA: a cluster's MySQL CA is generated once, stored sealed
// beside its passwords (neither write loses the other), and replaced for a
// new incarnation of the name.
func TestClusterCA(t *testing.T) {
	cli := testutil.EtcdClient(t, testutil.EmbeddedEtcd(t))
	ctx := context.Background()
	k1 := keyLine(t, "k1")
	s := store.New(cli, "/ca").WithSealer(keyRing(t, k1))
	const key = "/ca/secrets/default/shop"
	made := 0
	gen := func(cert, priv string) func() (store.ClusterCA, error) {
		return func() (store.ClusterCA, error) {
			made++
			return store.ClusterCA{CertPEM: cert, KeyPEM: priv}, nil
		}
	}

	if _, ok, err := s.ClusterCA(ctx, "default", "shop", "u1"); ok || err != nil {
		t.Fatalf("ClusterCA before any = %v, %v; want none", ok, err)
	}
	pw, err := s.EnsurePasswords(ctx, "default", "shop", "u1", "mysos_admin")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := s.EnsureClusterCA(ctx, "default", "shop", "u1", gen("CERT-1", "SECRET-KEY-1"))
	if err != nil || ca.CertPEM != "CERT-1" || ca.KeyPEM != "SECRET-KEY-1" || made != 1 {
		t.Fatalf("EnsureClusterCA = %+v, %v (made %d)", ca, err, made)
	}
	v, rev := rawValue(t, cli, key)
	if !seal.IsSealed(v) || bytes.Contains(v, []byte("SECRET-KEY-1")) {
		t.Fatalf("the CA is not sealed: %q", v)
	}
	again, err := s.EnsureClusterCA(ctx, "default", "shop", "u1", gen("CERT-2", "SECRET-KEY-2"))
	if err != nil || again != ca || made != 1 {
		t.Fatalf("EnsureClusterCA again = %+v, %v (made %d); want the stored one", again, err, made)
	}
	if _, rev2 := rawValue(t, cli, key); rev2 != rev {
		t.Fatal("EnsureClusterCA rewrote a CA it did not change")
	}
	// Passwords written after the CA keep it, and the CA kept the passwords.
	pw2, err := s.EnsurePasswords(ctx, "default", "shop", "u1", "mysos_admin", "mysos_repl")
	if err != nil || pw2["mysos_admin"] != pw["mysos_admin"] {
		t.Fatalf("EnsurePasswords after the CA: %v", err)
	}
	if got, ok, err := s.ClusterCA(ctx, "default", "shop", "u1"); !ok || err != nil || got != ca {
		t.Fatalf("ClusterCA after a password write = %+v, %v, %v", got, ok, err)
	}
	// Re-sealing under a new key keeps it.
	s2 := store.New(cli, "/ca").WithSealer(keyRing(t, keyLine(t, "k2"), k1))
	if n, err := s2.ResealSecrets(ctx); n != 1 || err != nil {
		t.Fatalf("ResealSecrets = %d, %v", n, err)
	}
	if got, ok, err := s2.ClusterCA(ctx, "default", "shop", "u1"); !ok || err != nil || got != ca || sealedBy(t, cli, key) != "k2" {
		t.Fatalf("ClusterCA after resealing = %+v, %v, %v", got, ok, err)
	}
	s = s2
	// Another incarnation of the name gets a CA of its own.
	if got, ok, err := s.ClusterCA(ctx, "default", "shop", "u2"); ok || err != nil {
		t.Fatalf("ClusterCA of a new incarnation = %+v, %v, %v; want none", got, ok, err)
	}
	fresh, err := s.EnsureClusterCA(ctx, "default", "shop", "u2", gen("CERT-3", "SECRET-KEY-3"))
	if err != nil || fresh.CertPEM != "CERT-3" || made != 2 {
		t.Fatalf("EnsureClusterCA for u2 = %+v, %v", fresh, err)
	}
	if got, ok, _ := s.ClusterCA(ctx, "default", "shop", "u1"); ok {
		t.Fatalf("the old incarnation's CA is still served: %+v", got)
	}
	// A failing generator stores nothing.
	boom := errors.New("no entropy")
	if _, err := s.EnsureClusterCA(ctx, "default", "other", "u9", func() (store.ClusterCA, error) { return store.ClusterCA{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("EnsureClusterCA with a failing generator: %v", err)
	}
	if _, ok, _ := s.ClusterCA(ctx, "default", "other", "u9"); ok {
		t.Fatal("a failed generation stored a CA")
	}
}
