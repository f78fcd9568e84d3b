package store_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// TestSecretsAtRest runs against one embedded etcd; each subtest keeps
// its keys under a prefix of its own.
func TestSecretsAtRest(t *testing.T) {
	cli := testutil.EtcdClient(t, testutil.EmbeddedEtcd(t))
	k0, k1 := keyLine(t, "k0"), keyLine(t, "k1")
	for name, test := range map[string]func(*testing.T, *clientv3.Client, string, string){
		"SealedRoundTrip":             testSealedRoundTrip,
		"CopiedOrTamperedDoesNotRead": testCopiedOrTampered,
		"Rotation":                    testRotation,
		"LegacyPlaintextMigrates":     testLegacyMigrates,
		"ResealReportsWhatItCannot":   testResealErrors,
		"NoPasswordInPlaintext":       testNoPlaintextPassword,
		"TokenRecordsRotate":          testTokenRecordsRotate,
	} {
		t.Run(name, func(t *testing.T) { test(t, cli, k0, k1) })
	}
}

func keyLine(t *testing.T, id string) string {
	t.Helper()
	line, err := seal.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func keyRing(t *testing.T, lines ...string) *seal.Ring {
	t.Helper()
	r, err := seal.ParseRing([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rawValue(t *testing.T, cli *clientv3.Client, key string) ([]byte, int64) {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("%s: no value", key)
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision
}

func sealedBy(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	v, _ := rawValue(t, cli, key)
	id, err := seal.KeyID(v)
	if err != nil {
		t.Fatalf("%s holds %q: %v", key, v, err)
	}
	return id
}

func errContains(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not contain %q", err, f)
		}
	}
}

func testSealedRoundTrip(t *testing.T, cli *clientv3.Client, _, k1 string) {
	ctx := context.Background()
	s := store.New(cli, "/sealed-rt").WithSealer(keyRing(t, k1))
	pw, err := s.EnsurePasswords(ctx, "default", "a", "u1", "mysos", "repl")
	if err != nil {
		t.Fatal(err)
	}
	v, rev := rawValue(t, cli, "/sealed-rt/secrets/default/a")
	if !seal.IsSealed(v) || sealedBy(t, cli, "/sealed-rt/secrets/default/a") != "k1" {
		t.Fatalf("stored value %q is not sealed with k1", v)
	}
	got, err := s.Passwords(ctx, "default", "a", "u1")
	if err != nil || got["mysos"] != pw["mysos"] || got["repl"] != pw["repl"] {
		t.Fatalf("Passwords = %v, %v; want what EnsurePasswords returned", len(got), err)
	}
	again, err := s.EnsurePasswords(ctx, "default", "a", "u1", "mysos")
	if err != nil || again["mysos"] != pw["mysos"] {
		t.Fatalf("EnsurePasswords again: %v", err)
	}
	if _, rev2 := rawValue(t, cli, "/sealed-rt/secrets/default/a"); rev2 != rev {
		t.Fatal("EnsurePasswords rewrote a set sealed with the primary key that it did not change")
	}
	if n, err := s.ResealSecrets(ctx); n != 0 || err != nil {
		t.Fatalf("ResealSecrets = %d, %v; want nothing to do", n, err)
	}
	// A store without the key ring refuses, saying what to configure.
	_, err = store.New(cli, "/sealed-rt").Passwords(ctx, "default", "a", "u1")
	errContains(t, err, "default/a", "key k1", "--secrets-key-file")
	if _, err := store.New(cli, "/sealed-rt").ResealSecrets(ctx); err == nil {
		t.Fatal("ResealSecrets without a key ring did not fail")
	}
}

func testCopiedOrTampered(t *testing.T, cli *clientv3.Client, _, k1 string) {
	ctx := context.Background()
	s := store.New(cli, "/sealed-copy").WithSealer(keyRing(t, k1))
	if _, err := s.EnsurePasswords(ctx, "default", "a", "u1", "mysos"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsurePasswords(ctx, "default", "b", "u2", "mysos"); err != nil {
		t.Fatal(err)
	}
	v, _ := rawValue(t, cli, "/sealed-copy/secrets/default/a")
	// a's set copied over b's (say, to learn or swap b's passwords) does not open.
	if _, err := cli.Put(ctx, "/sealed-copy/secrets/default/b", string(v)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Passwords(ctx, "default", "b", "u1")
	errContains(t, err, "default/b", "key k1", "does not open")
	// Nor does EnsurePasswords replace what it cannot read: a set it cannot
	// open may be the running cluster's, and new passwords would lock it out.
	_, err = s.EnsurePasswords(ctx, "default", "b", "u2", "mysos")
	errContains(t, err, "does not open")
	if after, _ := rawValue(t, cli, "/sealed-copy/secrets/default/b"); !bytes.Equal(after, v) {
		t.Fatal("EnsurePasswords overwrote a set it could not open")
	}

	tampered := bytes.Clone(v)
	tampered[len(tampered)-3] ^= 0x01
	if _, err := cli.Put(ctx, "/sealed-copy/secrets/default/a", string(tampered)); err != nil {
		t.Fatal(err)
	}
	_, err = s.Passwords(ctx, "default", "a", "u1")
	errContains(t, err, "default/a", "key k1")
}

func testRotation(t *testing.T, cli *clientv3.Client, k0, k1 string) {
	ctx := context.Background()
	const prefix = "/sealed-rot"
	old := store.New(cli, prefix).WithSealer(keyRing(t, k0))
	pa, err := old.EnsurePasswords(ctx, "default", "a", "ua", "mysos", "repl")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := old.EnsurePasswords(ctx, "prod", "b", "ub", "mysos")
	if err != nil {
		t.Fatal(err)
	}

	// The operator adds k1 as the first line and restarts: old values still
	// read, and ResealSecrets moves every one of them to k1.
	rotated := store.New(cli, prefix).WithSealer(keyRing(t, k1, k0))
	if got, err := rotated.Passwords(ctx, "default", "a", "ua"); err != nil || got["mysos"] != pa["mysos"] {
		t.Fatalf("k0 value with ring [k1 k0]: %v", err)
	}
	if id := sealedBy(t, cli, prefix+"/secrets/default/a"); id != "k0" {
		t.Fatalf("a read resealed the value (%s); reads must not write", id)
	}
	n, err := rotated.ResealSecrets(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ResealSecrets = %d, %v; want 2 values resealed", n, err)
	}
	for _, key := range []string{prefix + "/secrets/default/a", prefix + "/secrets/prod/b"} {
		if id := sealedBy(t, cli, key); id != "k1" {
			t.Fatalf("%s sealed with %s after ResealSecrets; want k1", key, id)
		}
	}
	if n, err := rotated.ResealSecrets(ctx); n != 0 || err != nil {
		t.Fatalf("second ResealSecrets = %d, %v; want nothing left", n, err)
	}

	// The old line removed, everything still reads, with the same passwords.
	newOnly := store.New(cli, prefix).WithSealer(keyRing(t, k1))
	if got, err := newOnly.Passwords(ctx, "default", "a", "ua"); err != nil || got["mysos"] != pa["mysos"] || got["repl"] != pa["repl"] {
		t.Fatalf("after rotation, a: %v", err)
	}
	if got, err := newOnly.Passwords(ctx, "prod", "b", "ub"); err != nil || got["mysos"] != pb["mysos"] {
		t.Fatalf("after rotation, b: %v", err)
	}
	// A scheduler still on the old file says which key it lacks.
	_, err = old.Passwords(ctx, "default", "a", "ua")
	errContains(t, err, "key k1", "not in the key ring (k0)", "non-first line")

	// EnsurePasswords seals a k0 value it meets with k1 too.
	if _, err := old.EnsurePasswords(ctx, "default", "c", "uc", "mysos"); err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.EnsurePasswords(ctx, "default", "c", "uc", "mysos"); err != nil {
		t.Fatal(err)
	}
	if id := sealedBy(t, cli, prefix+"/secrets/default/c"); id != "k1" {
		t.Fatalf("EnsurePasswords left a k0 value sealed with %s", id)
	}
}

func testLegacyMigrates(t *testing.T, cli *clientv3.Client, _, k1 string) {
	ctx := context.Background()
	const prefix = "/sealed-legacy"
	legacy := store.New(cli, prefix)
	pa, err := legacy.EnsurePasswords(ctx, "default", "a", "ua", "mysos")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := legacy.EnsurePasswords(ctx, "default", "b", "ub", "mysos")
	if err != nil {
		t.Fatal(err)
	}
	c, err := legacy.CreateWithPasswords(ctx, newCluster("c", 1), store.Passwords{"app": "chosen-by-user"})
	if err != nil {
		t.Fatal(err)
	}
	// Without a sealer nothing changes: plaintext JSON, as before.
	if v, _ := rawValue(t, cli, prefix+"/secrets/default/a"); !bytes.Contains(v, []byte(pa["mysos"])) || seal.IsSealed(v) {
		t.Fatalf("a store without a sealer wrote %q; want plaintext JSON", v)
	}

	s := store.New(cli, prefix).WithSealer(keyRing(t, k1))
	if got, err := s.Passwords(ctx, "default", "a", "ua"); err != nil || got["mysos"] != pa["mysos"] {
		t.Fatalf("legacy value with a sealer: %v", err)
	}
	// The next write seals it, even one that changes no password.
	if got, err := s.EnsurePasswords(ctx, "default", "a", "ua", "mysos"); err != nil || got["mysos"] != pa["mysos"] {
		t.Fatalf("EnsurePasswords on a legacy value: %v", err)
	}
	if id := sealedBy(t, cli, prefix+"/secrets/default/a"); id != "k1" {
		t.Fatalf("legacy value not sealed by the next write: %s", id)
	}
	// ResealSecrets seals the rest.
	n, err := s.ResealSecrets(ctx)
	if err != nil || n != 2 {
		t.Fatalf("ResealSecrets = %d, %v; want b and c resealed", n, err)
	}
	for _, key := range []string{"a", "b", "c"} {
		v, _ := rawValue(t, cli, prefix+"/secrets/default/"+key)
		if !seal.IsSealed(v) || bytes.Contains(v, []byte(`"passwords"`)) {
			t.Fatalf("%s still plaintext: %q", key, v)
		}
	}
	if got, err := s.Passwords(ctx, "default", "b", "ub"); err != nil || got["mysos"] != pb["mysos"] {
		t.Fatalf("b after resealing: %v", err)
	}
	if got, err := s.Passwords(ctx, "default", "c", c.Metadata.UID); err != nil || got["app"] != "chosen-by-user" {
		t.Fatalf("c after resealing: %v, %v", got, err)
	}
}

func testResealErrors(t *testing.T, cli *clientv3.Client, k0, k1 string) {
	ctx := context.Background()
	const prefix = "/sealed-errs"
	// One value sealed with a key the ring lacks, one legacy value, one
	// value that is not even JSON.
	if _, err := store.New(cli, prefix).WithSealer(keyRing(t, k0)).EnsurePasswords(ctx, "default", "lost", "u", "mysos"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.New(cli, prefix).EnsurePasswords(ctx, "default", "legacy", "u", "mysos"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, prefix+"/secrets/default/junk", "not json"); err != nil {
		t.Fatal(err)
	}
	s := store.New(cli, prefix).WithSealer(keyRing(t, k1))
	n, err := s.ResealSecrets(ctx)
	errContains(t, err, "default/lost", "key k0", "non-first line", "default/junk")
	if n != 1 || sealedBy(t, cli, prefix+"/secrets/default/legacy") != "k1" {
		t.Fatalf("ResealSecrets resealed %d; want the legacy value resealed despite the others", n)
	}
	if id := sealedBy(t, cli, prefix+"/secrets/default/lost"); id != "k0" {
		t.Fatalf("a value that does not open was rewritten (now %s)", id)
	}
	if v, _ := rawValue(t, cli, prefix+"/secrets/default/junk"); string(v) != "not json" {
		t.Fatalf("an undecodable value was rewritten: %q", v)
	}
}

// testNoPlaintextPassword writes everything the store writes for a
// cluster, then reads every value under the prefix: no password may show.
func testNoPlaintextPassword(t *testing.T, cli *clientv3.Client, _, k1 string) {
	ctx := context.Background()
	const prefix = "/sealed-dump"
	s := store.New(cli, prefix).WithSealer(keyRing(t, k1))
	var secrets []string

	// The legacy API: a user-chosen password created with the cluster.
	chosen := store.NewPassword()
	secrets = append(secrets, chosen)
	c, err := s.CreateWithPasswords(ctx, newCluster("legacy", 2), store.Passwords{"alice": chosen})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rawValue(t, cli, prefix+"/secrets/default/legacy"); !seal.IsSealed(v) || bytes.Contains(v, []byte(chosen)) {
		t.Fatalf("CreateWithPasswords stored %q; want it sealed", v)
	}
	pw, err := s.EnsurePasswords(ctx, "default", "legacy", c.Metadata.UID, "mysos_admin", "mysos_repl", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if pw["alice"] != chosen {
		t.Fatal("the user's chosen password was replaced")
	}
	d, err := s.Create(ctx, newCluster("gen", 3))
	if err != nil {
		t.Fatal(err)
	}
	pd, err := s.EnsurePasswords(ctx, "default", "gen", d.Metadata.UID, "mysos_admin", "mysos_repl", "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []store.Passwords{pw, pd} {
		for _, p := range set {
			secrets = append(secrets, p)
		}
	}

	// The other records the scheduler writes for these clusters.
	now := time.Now().UTC().Truncate(time.Second)
	for _, cl := range []*spec.MySQLCluster{c, d} {
		ns, name, uid := cl.Metadata.Namespace, cl.Metadata.Name, cl.Metadata.UID
		if _, err := s.UpdateStatus(ctx, ns, name, uid, func(st *spec.ClusterStatus) error {
			st.Phase = "Running"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutInstance(ctx, &store.Instance{Namespace: ns, Cluster: name, ClusterUID: uid, Phase: store.InstanceLaunched,
			AgentID: "agent", Hostname: "h", Port: 3306, TaskID: "t", Since: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PublishEndpoints(ctx, ns, name, uid, spec.Endpoints{Primary: "h:3306"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordEvent(ctx, spec.Event{Namespace: ns, Cluster: name, Reason: "Created", Message: "created", Time: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBackupJob(ctx, store.NewBackupJob(cl, "manual", now, "file:///var/lib/mysos/backups")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutArchiver(ctx, &store.Archiver{Namespace: ns, Cluster: name, ClusterUID: uid, Phase: store.InstancePending,
			Destination: "file:///var/lib/mysos/backups", Instance: name + "-0", SourceHost: "h", SourcePort: 3306, Since: now}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := cli.Get(ctx, prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, kv := range resp.Kvs {
		kinds[strings.SplitN(strings.TrimPrefix(string(kv.Key), prefix+"/"), "/", 2)[0]] = true
		for _, p := range secrets {
			if p == "" || bytes.Contains(kv.Value, []byte(p)) || bytes.Contains(kv.Key, []byte(p)) {
				t.Errorf("%s shows a password in plaintext", kv.Key)
			}
		}
		if strings.HasPrefix(string(kv.Key), prefix+"/secrets/") && !seal.IsSealed(kv.Value) {
			t.Errorf("%s is not sealed: %q", kv.Key, kv.Value)
		}
	}
	// The dump did cover every kind of record.
	for _, k := range []string{"clusters", "status", "secrets", "instances", "discovery", "events", "backups", "archivers"} {
		if !kinds[k] {
			t.Errorf("no %s record in the dump; got %v", k, kinds)
		}
	}
	if len(secrets) < 7 {
		t.Fatalf("only %d passwords checked", len(secrets))
	}
}

// testTokenRecordsRotate: API token records are sealed like passwords and
// move to a new key with ResealSecrets; a record written in plaintext (by
// someone without the key file) is no token and is never sealed into one.
func testTokenRecordsRotate(t *testing.T, cli *clientv3.Client, k0, k1 string) {
	ctx := context.Background()
	const prefix = "/sealed-tokens"
	old := store.New(cli, prefix).WithSealer(keyRing(t, k0))
	const hash = "aa00000000000000000000000000000000000000000000000000000000000000"
	if _, err := old.CreateToken(ctx, spec.APIToken{Name: "ci", Role: spec.RoleReadOnly}, hash); err != nil {
		t.Fatal(err)
	}
	if id := sealedBy(t, cli, prefix+"/tokens/by-hash/"+hash); id != "k0" {
		t.Fatalf("token record sealed by %q; want k0", id)
	}
	const forged = "bb00000000000000000000000000000000000000000000000000000000000000"
	if _, err := cli.Put(ctx, prefix+"/tokens/by-hash/"+forged, `{"name":"x","role":"admin","sha256":"`+forged+`"}`); err != nil {
		t.Fatal(err)
	}
	rotated := store.New(cli, prefix).WithSealer(keyRing(t, k1, k0))
	if _, err := rotated.ResealSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"by-hash/" + hash, "by-name/ci"} {
		if id := sealedBy(t, cli, prefix+"/tokens/"+key); id != "k1" {
			t.Fatalf("token record %s sealed by %q after ResealSecrets; want k1", key, id)
		}
	}
	if v, _ := rawValue(t, cli, prefix+"/tokens/by-hash/"+forged); seal.IsSealed(v) {
		t.Fatal("ResealSecrets sealed a plaintext token record, making it a token")
	}
	onlyNew := store.New(cli, prefix).WithSealer(keyRing(t, k1))
	if tok, err := onlyNew.TokenByHash(ctx, hash); err != nil || tok.Name != "ci" {
		t.Fatalf("token with the old key removed: %v %v", tok, err)
	}
	if _, err := onlyNew.TokenByHash(ctx, forged); err == nil {
		t.Fatal("a plaintext token record authenticates")
	}
	if list, err := onlyNew.ListTokens(ctx); err != nil || len(list) != 1 || list[0].Name != "ci" {
		t.Fatalf("ListTokens = %v, %v; want only ci", list, err)
	}
}
