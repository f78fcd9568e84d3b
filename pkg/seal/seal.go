// Package seal has one job: sealing secret values with a rotatable key
// ring, so that what Mysos keeps in etcd (the clusters' MySQL passwords)
// is useless to whoever reads etcd without the key file.
//
// A key ring is a text file, one key per line:
//
//	# comments and blank lines are ignored
//	<key-id>:<standard base64 of 32 random bytes>
//
// A key id is 1 to 64 letters, digits, '.', '_' or '-', starting with a
// letter or digit. The FIRST key seals new values; every key opens. To
// rotate, put a new key on the first line and keep the old one below it,
// restart the scheduler (it re-seals every value with the new key), then
// remove the old line.
//
// A sealed value is printable ASCII:
//
//	mysos:seal:v1:<key-id>:<unpadded base64url of nonce(12) | ciphertext | tag(16)>
//
// sealed with AES-256-GCM under a random 96-bit nonce. The GCM additional
// data is the header "mysos:seal:v1:<key-id>:" followed by the caller's
// aad (the store passes the etcd key), so a value copied under another key,
// or with its header edited, does not open. Anything that does not start
// with [Prefix] is not sealed, which is how a reader tells a sealed value
// from a legacy plaintext one.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Prefix starts every sealed value; the format version is part of it.
const Prefix = "mysos:seal:v1:"

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// ErrNotSealed is returned by [KeyID] and [Ring.Open] for a value that
// does not start with [Prefix].
var ErrNotSealed = errors.New("value is not sealed")

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidKeyID reports whether id may name a key.
func ValidKeyID(id string) bool { return keyIDRE.MatchString(id) }

type key struct {
	id  string
	raw []byte
}

// Ring is a parsed key ring. Its first key seals, every key opens. It is
// safe for concurrent use, and it never prints its keys.
type Ring struct {
	keys []key
}

// ParseRing reads a key ring in the format of the package comment. Errors
// name the line, never the key material.
func ParseRing(data []byte) (*Ring, error) {
	r := &Ring{}
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !ok {
			return nil, fmt.Errorf("line %d: want <key-id>:<base64 of %d random bytes>", n, KeySize)
		}
		if !ValidKeyID(id) {
			return nil, fmt.Errorf("line %d: key id %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", n, id)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: key id %q is already used on line %d: give each key its own id", n, id, prev)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: key %s is not valid base64; generate one with: head -c %d /dev/urandom | base64", n, id, KeySize)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("line %d: key %s is %d bytes, want %d; generate one with: head -c %d /dev/urandom | base64", n, id, len(raw), KeySize, KeySize)
		}
		seen[id] = n
		r.keys = append(r.keys, key{id: id, raw: raw})
	}
	if len(r.keys) == 0 {
		return nil, errors.New("no key: add a line <key-id>:<base64 of 32 random bytes>, e.g. k1:$(head -c 32 /dev/urandom | base64)")
	}
	return r, nil
}

// Primary returns the id of the key that seals new values.
func (r *Ring) Primary() string { return r.keys[0].id }

// KeyIDs returns the ids of the ring's keys, the primary first.
func (r *Ring) KeyIDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// String names the keys, never their material, so a ring in a log line or
// a %v leaks nothing.
func (r *Ring) String() string {
	return "seal.Ring{keys: " + strings.Join(r.KeyIDs(), ", ") + "}"
}

// GoString is String, for %#v.
func (r *Ring) GoString() string { return r.String() }

func (r *Ring) find(id string) (key, bool) {
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return key{}, false
}

func aead(raw []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

func header(id string) string { return Prefix + id + ":" }

// Seal encrypts plaintext with the primary key, bound to aad (which must
// be given again to open it), and returns the sealed value.
func (r *Ring) Seal(plaintext, aad []byte) ([]byte, error) {
	k := r.keys[0]
	g, err := aead(k.raw)
	if err != nil {
		return nil, fmt.Errorf("seal with key %s: %w", k.id, err)
	}
	h := header(k.id)
	ct := g.Seal(nil, nil, plaintext, append([]byte(h), aad...))
	out := make([]byte, len(h), len(h)+base64.RawURLEncoding.EncodedLen(len(ct)))
	copy(out, h)
	return base64.RawURLEncoding.AppendEncode(out, ct), nil
}

// Open decrypts a sealed value with the key that sealed it, checking that
// it was sealed with the same aad, and returns the plaintext and that
// key's id.
func (r *Ring) Open(sealed, aad []byte) (plaintext []byte, keyID string, err error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, id, err
	}
	k, ok := r.find(id)
	if !ok {
		return nil, id, fmt.Errorf("sealed with key %s, which is not in the key ring (%s): add the old key back to the secrets key file (--secrets-key-file) as a non-first line",
			id, strings.Join(r.KeyIDs(), ", "))
	}
	// Strict: a canonical encoding only, so that no two texts of one
	// sealed value exist (unused trailing bits must be zero).
	ct, err := base64.RawURLEncoding.Strict().DecodeString(string(body))
	if err != nil {
		return nil, id, fmt.Errorf("sealed with key %s: the value is damaged (bad base64)", id)
	}
	g, err := aead(k.raw)
	if err != nil {
		return nil, id, fmt.Errorf("open with key %s: %w", id, err)
	}
	pt, err := g.Open(nil, nil, ct, append([]byte(header(id)), aad...))
	if err != nil {
		return nil, id, fmt.Errorf("sealed with key %s: it does not open (%v): the value was altered or copied from another etcd key, or the key named %s in the key file is not the one that sealed it",
			id, err, id)
	}
	return pt, id, nil
}

// IsSealed reports whether v looks like a sealed value (starts with
// [Prefix]); it says nothing about whether it opens.
func IsSealed(v []byte) bool { return bytes.HasPrefix(v, []byte(Prefix)) }

// KeyID returns the id of the key that sealed v, without opening it;
// [ErrNotSealed] when v is not sealed.
func KeyID(v []byte) (string, error) {
	id, _, err := split(v)
	return id, err
}

func split(v []byte) (id string, body []byte, err error) {
	rest, ok := bytes.CutPrefix(v, []byte(Prefix))
	if !ok {
		if bytes.HasPrefix(v, []byte("mysos:seal:")) {
			return "", nil, fmt.Errorf("sealed in an unknown format %q: this Mysos reads %q; run a newer Mysos", firstFields(v), Prefix)
		}
		return "", nil, ErrNotSealed
	}
	idb, body, ok := bytes.Cut(rest, []byte(":"))
	if !ok || !ValidKeyID(string(idb)) {
		return "", nil, errors.New("sealed value is damaged: no valid key id after " + Prefix)
	}
	return string(idb), body, nil
}

func firstFields(v []byte) string {
	parts := bytes.SplitN(v, []byte(":"), 4)
	return string(bytes.Join(parts[:min(len(parts), 3)], []byte(":")))
}

// NewKeyID returns a key id made of t: "k" and its UTC date and time to
// the second (k20060102150405), so that ids of rotated keys sort by age.
func NewKeyID(t time.Time) string { return "k" + t.UTC().Format("20060102150405") }

// GenerateKey returns a new key ring line "<id>:<base64 of 32 random
// bytes>" for id. To rotate, put it first in the key file, keep the old
// key below it, and restart the scheduler.
func GenerateKey(id string) (string, error) {
	if !ValidKeyID(id) {
		return "", fmt.Errorf("key id %q must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate key %s: %w", id, err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b[:]), nil
}

// keyFileHeader starts a generated key file.
const keyFileHeader = `# Mysos secrets key ring: sealing keys of the MySQL passwords kept in etcd.
# One key per line, <key-id>:<base64 of 32 random bytes>. The FIRST key seals
# new values; every key opens. Keep a copy somewhere safe: without it the
# stored passwords cannot be read. To rotate, add a new first line, e.g.
#   k2:<output of: head -c 32 /dev/urandom | base64>
# keep this one below it, restart the scheduler (it re-seals every value with
# the new key), then remove the old line. See docs/security.md.
`

// LoadKeyFile reads the key ring at path, refusing a file that group or
// others may read.
func LoadKeyFile(path string) (*Ring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secrets key file %s is open to group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read secrets key file %s: %w", path, err)
	}
	r, err := ParseRing(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return r, nil
}

// LoadOrCreateKeyFile reads the key ring at path, or, when the file does
// not exist, generates a ring of one key (id from [NewKeyID]) and writes it
// there readable only by its owner. created reports which happened.
func LoadOrCreateKeyFile(path string) (r *Ring, created bool, err error) {
	r, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return r, false, err
	}
	line, err := GenerateKey(NewKeyID(time.Now()))
	if err != nil {
		return nil, false, err
	}
	content := keyFileHeader + line + "\n"
	if r, err = ParseRing([]byte(content)); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create secrets key directory: %w", err)
	}
	// O_EXCL: if two schedulers race on one data dir, one keeps its key and
	// the other fails loudly rather than both sealing with different ones.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("write secrets key file: %w", err)
	}
	_, err = f.WriteString(content)
	if err == nil {
		// A key lost in a crash would make every value sealed with it
		// unreadable: make it durable before anything is sealed.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, false, fmt.Errorf("write secrets key file %s: %w", path, err)
	}
	return r, true, nil
}
