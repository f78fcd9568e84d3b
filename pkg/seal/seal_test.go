package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/seal"
)

// ring parses a key ring of the given lines.
func ring(t *testing.T, lines ...string) *seal.Ring {
	t.Helper()
	r, err := seal.ParseRing([]byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newKey(t *testing.T, id string) string {
	t.Helper()
	line, err := seal.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func wantErr(t *testing.T, err error, fragments ...string) {
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

func TestRoundTrip(t *testing.T) {
	r := ring(t, newKey(t, "k1"))
	aad := []byte("/mysos/secrets/default/shop")
	plain := []byte(`{"uid":"uid-7f3a9c2e","passwords":{"mysos":"SECRETSECRET"}}`)
	sealed, err := r.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte(seal.Prefix+"k1:")) || !seal.IsSealed(sealed) {
		t.Fatalf("sealed value %q does not start with %sk1:", sealed, seal.Prefix)
	}
	if bytes.Contains(sealed, []byte("SECRETSECRET")) || bytes.Contains(sealed, []byte("uid-7f3a9c2e")) {
		t.Fatalf("sealed value %q shows the plaintext", sealed)
	}
	for _, c := range sealed {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("sealed value %q is not printable ASCII", sealed)
		}
	}
	got, id, err := r.Open(sealed, aad)
	if err != nil || id != "k1" || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %q, %v; want the plaintext, k1", got, id, err)
	}
	if kid, err := seal.KeyID(sealed); kid != "k1" || err != nil {
		t.Fatalf("KeyID = %q, %v; want k1", kid, err)
	}
	again, _ := r.Seal(plain, aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("sealing twice gave the same value: the nonce is not random")
	}
	empty, err := r.Seal(nil, aad)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := r.Open(empty, aad); err != nil || len(got) != 0 {
		t.Fatalf("empty plaintext: %q, %v", got, err)
	}
}

func TestWrongAADFails(t *testing.T) {
	r := ring(t, newKey(t, "k1"))
	sealed, _ := r.Seal([]byte("pw"), []byte("/mysos/secrets/default/a"))
	_, id, err := r.Open(sealed, []byte("/mysos/secrets/default/b"))
	wantErr(t, err, "key k1", "does not open", "copied from another etcd key")
	if id != "k1" {
		t.Fatalf("key id %q; want k1 even on failure", id)
	}
}

func TestTamperedFails(t *testing.T) {
	r := ring(t, newKey(t, "k1"), newKey(t, "k2"))
	aad := []byte("k")
	sealed, _ := r.Seal([]byte("a password"), aad)
	body := len(seal.Prefix + "k1:")
	for i := body; i < len(sealed); i++ {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, _, err := r.Open(bad, aad); err == nil {
			t.Fatalf("a value with byte %d flipped opened", i)
		}
	}
	// The header is authenticated too: naming another key of the ring
	// does not make the value open with it.
	relabelled := bytes.Replace(sealed, []byte(":k1:"), []byte(":k2:"), 1)
	if _, _, err := r.Open(relabelled, aad); err == nil {
		t.Fatal("a value relabelled with another key id opened")
	}
	if _, _, err := r.Open(sealed[:len(sealed)-5], aad); err == nil {
		t.Fatal("a truncated value opened")
	}
	if _, _, err := r.Open([]byte(seal.Prefix+"k1:"), aad); err == nil {
		t.Fatal("an empty body opened")
	}
	_, _, err := r.Open([]byte(seal.Prefix+"k1:not*base64"), aad)
	wantErr(t, err, "key k1", "damaged")
	_, _, err = r.Open([]byte(seal.Prefix+"no key id"), aad)
	wantErr(t, err, "damaged")
}

func TestNotSealed(t *testing.T) {
	r := ring(t, newKey(t, "k1"))
	legacy := []byte(`{"uid":"u1","passwords":{}}`)
	if seal.IsSealed(legacy) {
		t.Fatal("plaintext JSON taken for sealed")
	}
	if _, _, err := r.Open(legacy, nil); !errors.Is(err, seal.ErrNotSealed) {
		t.Fatalf("Open(plaintext) = %v; want ErrNotSealed", err)
	}
	if _, err := seal.KeyID(legacy); !errors.Is(err, seal.ErrNotSealed) {
		t.Fatalf("KeyID(plaintext) = %v; want ErrNotSealed", err)
	}
	_, err := seal.KeyID([]byte("mysos:seal:v2:k1:abc"))
	wantErr(t, err, "unknown format", "mysos:seal:v2", "newer Mysos")
	if errors.Is(err, seal.ErrNotSealed) {
		t.Fatal("a value of a later format taken for plaintext")
	}
}

func TestRotation(t *testing.T) {
	k0, k1 := newKey(t, "k0"), newKey(t, "k1")
	aad := []byte("/mysos/secrets/default/shop")
	old := ring(t, k0)
	sealedOld, _ := old.Seal([]byte("pw0"), aad)

	// A new first key seals; the old one, now second, still opens.
	rotated := ring(t, "# new key first", k1, "", "# the old one until everything is resealed", k0)
	if rotated.Primary() != "k1" {
		t.Fatalf("primary %q; want the first key, k1", rotated.Primary())
	}
	got, id, err := rotated.Open(sealedOld, aad)
	if err != nil || id != "k0" || string(got) != "pw0" {
		t.Fatalf("old value with the rotated ring: %q, %q, %v; want pw0 opened by k0", got, id, err)
	}
	resealed, _ := rotated.Seal(got, aad)
	if id, _ := seal.KeyID(resealed); id != "k1" {
		t.Fatalf("rotated ring sealed with %q; want k1", id)
	}

	// Once the old key is removed, what it sealed says which key to add back.
	newOnly := ring(t, k1)
	if got, _, err := newOnly.Open(resealed, aad); err != nil || string(got) != "pw0" {
		t.Fatalf("resealed value with the new key alone: %q, %v", got, err)
	}
	_, id, err = newOnly.Open(sealedOld, aad)
	wantErr(t, err, "key k0", "not in the key ring (k1)", "--secrets-key-file", "non-first line")
	if id != "k0" {
		t.Fatalf("key id %q; want k0", id)
	}
	if got := rotated.KeyIDs(); strings.Join(got, ",") != "k1,k0" {
		t.Fatalf("KeyIDs = %v; want [k1 k0]", got)
	}
}

func TestSameKeyOtherIDDoesNotOpen(t *testing.T) {
	// The key id is authenticated: the same material under another id is
	// another key as far as sealed values go.
	line := newKey(t, "a")
	_, material, _ := strings.Cut(line, ":")
	sealed, _ := ring(t, line).Seal([]byte("pw"), nil)
	relabelled := bytes.Replace(sealed, []byte(":a:"), []byte(":b:"), 1)
	if _, _, err := ring(t, "b:"+material).Open(relabelled, nil); err == nil {
		t.Fatal("a value relabelled to another id of the same key opened")
	}
}

func TestParseRingErrors(t *testing.T) {
	good := newKey(t, "k1")
	_, material, _ := strings.Cut(good, ":")
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"no key"}},
		{"only comments", "# nothing\n\n  # here\n", []string{"no key"}},
		{"no colon", "k1" + material, []string{"line 1", "<key-id>:<base64"}},
		{"bad id", "# c\nk 1:" + material, []string{"line 2", `"k 1"`}},
		{"empty id", ":" + material, []string{"line 1", "key id"}},
		{"duplicate id", good + "\n" + good, []string{"line 2", "k1", "line 1"}},
		{"bad base64", "k1:!!!!", []string{"line 1", "key k1", "not valid base64", "head -c 32 /dev/urandom | base64"}},
		{"short key", "k1:" + short, []string{"line 1", "key k1", "16 bytes, want 32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seal.ParseRing([]byte(tc.in))
			wantErr(t, err, tc.want...)
			if strings.Contains(err.Error(), material) {
				t.Fatalf("error %q shows key material", err)
			}
		})
	}
	r, err := seal.ParseRing([]byte("\r\n# windows\r\n  " + good + "  \r\n"))
	if err != nil || r.Primary() != "k1" {
		t.Fatalf("CRLF and spaces: %v, %v", r, err)
	}
	unpadded := "k2:" + strings.TrimRight(material, "=")
	if _, err := seal.ParseRing([]byte(unpadded)); err != nil {
		t.Fatalf("unpadded base64: %v", err)
	}
}

func TestRingNeverPrintsKeys(t *testing.T) {
	line := newKey(t, "k1")
	_, material, _ := strings.Cut(line, ":")
	r := ring(t, line)
	raw, _ := base64.StdEncoding.DecodeString(material)
	out := fmt.Sprintf("%v %+v %#v %s", r, r, r, r)
	if strings.Contains(out, material) || strings.Contains(out, fmt.Sprint(raw)) || strings.Contains(out, fmt.Sprintf("%x", raw)) {
		t.Fatalf("formatting the ring shows its key: %s", out)
	}
	if !strings.Contains(out, "k1") {
		t.Fatalf("formatting the ring does not name its keys: %s", out)
	}
}

func TestGenerateKey(t *testing.T) {
	if _, err := seal.GenerateKey("no:colons"); err == nil {
		t.Fatal("an id with a colon accepted")
	}
	if _, err := seal.GenerateKey(""); err == nil {
		t.Fatal("an empty id accepted")
	}
	a, b := newKey(t, "k2"), newKey(t, "k2")
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	id := seal.NewKeyID(time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600)))
	if id != "k20260304040607" || !seal.ValidKeyID(id) {
		t.Fatalf("NewKeyID = %q; want k20260304040607 (UTC)", id)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secrets.key")
	r, created, err := seal.LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v; want a new file", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file has mode %04o; want 0600", fi.Mode().Perm())
	}
	if !seal.ValidKeyID(r.Primary()) || !strings.HasPrefix(r.Primary(), "k") {
		t.Fatalf("generated key id %q", r.Primary())
	}
	sealed, _ := r.Seal([]byte("pw"), []byte("aad"))

	again, created, err := seal.LoadOrCreateKeyFile(path)
	if err != nil || created {
		t.Fatalf("second load: created %v, %v; want the existing file", created, err)
	}
	if got, _, err := again.Open(sealed, []byte("aad")); err != nil || string(got) != "pw" {
		t.Fatalf("value sealed before a reload: %q, %v", got, err)
	}

	// The generated file is a valid ring to which a rotated key is added.
	content, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append([]byte(newKey(t, "k-next")+"\n"), content...), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated, err := seal.LoadKeyFile(path)
	if err != nil || rotated.Primary() != "k-next" {
		t.Fatalf("rotated file: %v, %v; want k-next first", rotated, err)
	}
	if got, _, err := rotated.Open(sealed, []byte("aad")); err != nil || string(got) != "pw" {
		t.Fatalf("old value after rotation: %q, %v", got, err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()

	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(newKey(t, "k1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(open, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := seal.LoadOrCreateKeyFile(open)
		wantErr(t, err, open, "group or others", "chmod 600 "+open)
	}

	empty := filepath.Join(dir, "empty.key")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, created, err := seal.LoadOrCreateKeyFile(empty)
	wantErr(t, err, empty, "no key")
	if created {
		t.Fatal("an existing empty file replaced")
	}

	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("k1:short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = seal.LoadOrCreateKeyFile(bad)
	wantErr(t, err, bad, "line 1", "key k1")

	_, _, err = seal.LoadOrCreateKeyFile(dir)
	wantErr(t, err, "not a regular file")

	if _, err := seal.LoadKeyFile(filepath.Join(dir, "missing.key")); err == nil {
		t.Fatal("LoadKeyFile created or accepted a missing file")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKeyFile left a file behind: %v", err)
	}
}
