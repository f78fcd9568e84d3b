package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
)

func TestFileCatalog(t *testing.T) {
	root := t.TempDir()
	target, err := backup.OpenTarget("file://"+root, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testCatalog(t, target)

	// A byte flipped on disk, behind the target's back.
	ctx := context.Background()
	m := storeBackup(t, target, "flip", time.Date(2026, 11, 26, 4, 5, 12, 0, time.UTC), sampleDump(1<<20))
	file := filepath.Join(root, filepath.FromSlash(path.Join(backup.Dir(m.Namespace, m.Cluster, m.ID), backup.DumpObject)))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	err = readVerified(ctx, target, m, nil)
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "backup flip/20261126T040512Z is corrupt: dump.sql.zst has SHA-256 ") ||
		!strings.Contains(err.Error(), "its manifest says "+m.SHA256) {
		t.Fatalf("reading a dump with a flipped byte: %v; want ErrCorrupt naming the backup and both checksums", err)
	}
}

// TestHDFSCatalog runs the same contract against a real HDFS.
func TestHDFSCatalog(t *testing.T) {
	h := testutil.StartHDFS(t)
	target, err := backup.OpenTarget("hdfs://"+h.Addr+"/mysos/backups", backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Close() })
	testCatalog(t, target)
}

func testCatalog(t *testing.T, target backup.Target) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Date(2026, 11, 26, 4, 5, 12, 0, time.UTC)
	if list, err := backup.List(ctx, target, "default", "shop"); err != nil || len(list) != 0 {
		t.Fatalf("List of an empty target: %v, %v", list, err)
	}

	// Round trip.
	dump := sampleDump(3<<20 + 5)
	m := storeBackup(t, target, "shop", t0, dump)
	got, err := backup.ReadManifest(ctx, target, "default", "shop", m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sameManifest(got, m) || got.Duration() != 90*time.Second {
		t.Fatalf("read back manifest %+v; wrote %+v", got, m)
	}
	if m.RawSize != int64(len(dump)) || m.Size >= m.RawSize {
		t.Fatalf("sizes %d compressed, %d raw; the dump has %d bytes and compresses well", m.Size, m.RawSize, len(dump))
	}
	var out bytes.Buffer
	if err := readVerified(ctx, target, m, &out); err != nil || !bytes.Equal(out.Bytes(), dump) {
		t.Fatalf("read back %d bytes (%v); wrote %d", out.Len(), err, len(dump))
	}

	// Listed oldest first, whatever the order taken; other clusters and
	// namespaces apart.
	later := storeBackup(t, target, "shop", t0.Add(time.Hour), []byte("-- later\n"))
	earlier := storeBackup(t, target, "shop", t0.Add(-time.Hour), []byte("-- earlier\n"))
	storeBackup(t, target, "shop2", t0, []byte("-- another cluster\n"))
	checkList(t, target, "shop", earlier.ID, m.ID, later.ID)

	// A dump without manifest is incomplete: not listed, whatever else is
	// wrong with it; and neither is a manifest that does not parse.
	incomplete := backup.NewID(t0.Add(2 * time.Hour))
	if _, _, err := backup.Upload(ctx, target, path.Join(backup.Dir("default", "shop", incomplete), backup.DumpObject), strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	garbled := backup.NewID(t0.Add(3 * time.Hour))
	if _, err := target.Put(ctx, path.Join(backup.Dir("default", "shop", garbled), backup.ManifestObject), strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}
	checkList(t, target, "shop", earlier.ID, m.ID, later.ID)
	if ids, err := backup.ListIncomplete(ctx, target, "default", "shop"); err != nil || !slices.Equal(ids, []string{incomplete}) {
		t.Fatalf("ListIncomplete: %v, %v; want [%s]", ids, err, incomplete)
	}

	// An upload whose source fails stores nothing, and says why.
	failed := path.Join(backup.Dir("default", "shop", backup.NewID(t0.Add(4*time.Hour))), backup.DumpObject)
	src := io.MultiReader(bytes.NewReader(dump[:1<<20]), errReader{})
	if _, _, err := backup.Upload(ctx, target, failed, src); err == nil || !strings.Contains(err.Error(), "the source broke") {
		t.Fatalf("Upload of a failing source: %v", err)
	}
	if _, err := target.Open(ctx, failed); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("after a failed Upload: %v; want nothing stored", err)
	}

	testCorrupt(t, target, m, dump)

	// Delete: gone from the list; a second backup.Delete and backup.ReadManifest say
	// there is no such backup, naming it and the target.
	if err := backup.Delete(ctx, target, "default", "shop", m.ID); err != nil {
		t.Fatal(err)
	}
	checkList(t, target, "shop", earlier.ID, later.ID)
	if err := backup.Delete(ctx, target, "default", "shop", m.ID); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("second Delete: %v; want ErrNotFound", err)
	}
	_, err = backup.ReadManifest(ctx, target, "default", "shop", m.ID)
	if !errors.Is(err, backup.ErrNotFound) || !strings.Contains(err.Error(), "shop/"+m.ID) || !strings.Contains(err.Error(), target.String()) {
		t.Fatalf("ReadManifest of a deleted backup: %v; want ErrNotFound naming it and the target", err)
	}
	// Deleting an incomplete backup removes its data.
	if err := backup.Delete(ctx, target, "default", "shop", incomplete); err != nil {
		t.Fatal(err)
	}
	if ids, err := backup.ListIncomplete(ctx, target, "default", "shop"); err != nil || len(ids) != 0 {
		t.Fatalf("ListIncomplete after deleting: %v, %v", ids, err)
	}
}

// testCorrupt replaces the stored dump of m with damaged copies.
func testCorrupt(t *testing.T, target backup.Target, m backup.Manifest, dump []byte) {
	ctx := context.Background()
	name := path.Join(backup.Dir(m.Namespace, m.Cluster, m.ID), backup.DumpObject)
	good := readAll(t, target, name)
	restore := func() {
		if _, err := target.Put(ctx, name, bytes.NewReader(good)); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()
	for _, c := range []struct {
		what   string
		object []byte
		want   string
	}{
		{"a flipped byte", flip(good, len(good)/3), "dump.sql.zst has SHA-256 "},
		{"a flipped last byte", flip(good, len(good)-1), "dump.sql.zst has SHA-256 "},
		{"a truncated object", good[:len(good)/2], fmt.Sprintf("dump.sql.zst has %d bytes, its manifest says %d", len(good)/2, len(good))},
		{"trailing bytes", append(slices.Clone(good), 0), fmt.Sprintf("dump.sql.zst has %d bytes", len(good)+1)},
	} {
		if _, err := target.Put(ctx, name, bytes.NewReader(c.object)); err != nil {
			t.Fatal(err)
		}
		err := readVerified(ctx, target, m, nil)
		if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "backup shop/"+m.ID+" is corrupt: "+c.want) {
			t.Errorf("%s: %v; want ErrCorrupt saying %q", c.what, err, c.want)
		}
	}

	// Stored as its manifest says, but not zstd: corrupt all the same.
	stored, err := target.Put(ctx, name, bytes.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	bad := m
	bad.Size, bad.SHA256 = stored.Size, stored.SHA256
	if err := readVerified(ctx, target, bad, nil); !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "cannot be decompressed") {
		t.Errorf("a dump that is not zstd: %v; want ErrCorrupt saying it cannot be decompressed", err)
	}
}

func flip(b []byte, i int) []byte {
	out := slices.Clone(b)
	out[i] ^= 0x01
	return out
}

// sampleDump looks like a dump: n bytes of INSERT lines.
func sampleDump(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "INSERT INTO `t` VALUES (%d,'row %d',%d);\n", i, i*7919%104729, i*i)
	}
	return b.Bytes()[:n]
}

// storeBackup stores dump as the backup of default/cluster started at t.
func storeBackup(t *testing.T, target backup.Target, cluster string, at time.Time, dump []byte) backup.Manifest {
	t.Helper()
	ctx := context.Background()
	m := backup.Manifest{
		ID: backup.NewID(at), Namespace: "default", Cluster: cluster, ClusterUID: "uid-1", Instance: cluster + "-1",
		StartedAt: at, FinishedAt: at.Add(90 * time.Second), Flavor: "mariadb", ServerVersion: "10.11.6-MariaDB",
		GTIDPosition: "0-1-42", Payload: backup.Payload{Format: backup.FormatSQLZstd, Object: backup.DumpObject}, Databases: []string{"shop"},
	}
	stored, raw, err := backup.Upload(ctx, target, path.Join(backup.Dir(m.Namespace, m.Cluster, m.ID), m.Object), bytes.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	m.Size, m.RawSize, m.SHA256 = stored.Size, raw, stored.SHA256
	if err := backup.WriteManifest(ctx, target, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// readVerified reads the backup's dump to the end, into w if not nil.
func readVerified(ctx context.Context, target backup.Target, m backup.Manifest, w io.Writer) error {
	r, err := backup.OpenVerified(ctx, target, m)
	if err != nil {
		return err
	}
	defer r.Close()
	if w == nil {
		w = io.Discard
	}
	_, err = io.Copy(w, r)
	return err
}

func checkList(t *testing.T, target backup.Target, cluster string, ids ...string) {
	t.Helper()
	list, err := backup.List(context.Background(), target, "default", cluster)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, m.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %v; want %v", got, ids)
	}
}

func sameManifest(a, b backup.Manifest) bool {
	if !a.StartedAt.Equal(b.StartedAt) || !a.FinishedAt.Equal(b.FinishedAt) {
		return false
	}
	a.StartedAt, a.FinishedAt, b.StartedAt, b.FinishedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestIDs(t *testing.T) {
	at := time.Date(2026, 11, 26, 5, 5, 12, 999, time.FixedZone("CET", 3600))
	if id := backup.NewID(at); id != "20261126T040512Z" || backup.ValidID(id) != nil {
		t.Fatalf("NewID: %q (%v)", id, backup.ValidID(id))
	}
	if backup.NewID(at) >= backup.NewID(at.Add(time.Second)) {
		t.Fatal("IDs do not sort as their times")
	}
	for _, bad := range []string{"", "20261126T040512", "20261126T040512Z/..", "2026-11-26T04:05:12Z", "20261326T040512Z"} {
		if backup.ValidID(bad) == nil {
			t.Errorf("ValidID(%q) accepted it", bad)
		}
	}
	target, err := backup.OpenTarget("file://"+t.TempDir(), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range [][3]string{{"", "shop", backup.NewID(at)}, {"default", "../x", backup.NewID(at)}, {"default", "shop", "latest"}} {
		if _, err := backup.ReadManifest(context.Background(), target, ref[0], ref[1], ref[2]); err == nil || errors.Is(err, backup.ErrNotFound) {
			t.Errorf("ReadManifest%q: %v; want the reference refused", ref, err)
		}
	}
}
