package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
)

func TestFileTarget(t *testing.T) {
	target, err := backup.OpenTarget("file://"+t.TempDir()+"/backups", backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testTarget(t, target)
}

// TestHDFSTarget runs the same contract against a real HDFS.
func TestHDFSTarget(t *testing.T) {
	h := testutil.StartHDFS(t)
	target, err := backup.OpenTarget("hdfs://"+h.Addr+"/mysos/backups", backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Close() })
	testTarget(t, target)

	// HDFS down: the upload fails, visibly and in bounded time.
	h.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := target.Put(ctx, "shop/after-stop", bytes.NewReader([]byte("x"))); err == nil {
		t.Fatal("a Put to a stopped HDFS succeeded")
	}
}

func testTarget(t *testing.T, target backup.Target) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := make([]byte, 3<<20+17) // more than one HDFS packet, not a round size
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	stored, err := target.Put(ctx, "shop/full-1.xb.zst", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if stored.Size != int64(len(data)) || stored.SHA256 != hex.EncodeToString(sum[:]) || stored.Name != "shop/full-1.xb.zst" {
		t.Fatalf("stored %+v; want %d bytes with SHA-256 %x", stored, len(data), sum)
	}
	if got := readAll(t, target, "shop/full-1.xb.zst"); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
	}

	// A reader that fails midway: the Put fails and nothing is listed,
	// not even the temporary file.
	broken := io.MultiReader(bytes.NewReader(data[:1<<20]), errReader{})
	if _, err := target.Put(ctx, "shop/full-2.xb.zst", broken); err == nil {
		t.Fatal("a Put whose source failed succeeded")
	}
	if _, err := target.Put(ctx, "other/manifest.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	objects, err := target.List(ctx, "shop/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) != 1 || objects[0].Name != "shop/full-1.xb.zst" || objects[0].Size != int64(len(data)) {
		t.Fatalf("listed %+v; want only the complete shop/full-1.xb.zst", objects)
	}
	all, err := target.List(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("listed %+v, %v; want the two complete objects", all, err)
	}

	// Overwriting replaces whole.
	if _, err := target.Put(ctx, "other/manifest.json", strings.NewReader(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, target, "other/manifest.json"); string(got) != `{"v":2}` {
		t.Fatalf("after overwriting: %q", got)
	}

	for _, bad := range []string{"", "/abs", "../up", "a/../../b", "shop/.tmp-1-x", "a//b"} {
		if _, err := target.Put(ctx, bad, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded; want the name refused", bad)
		}
	}
	if err := target.Delete(ctx, "shop/full-1.xb.zst"); err != nil {
		t.Fatal(err)
	}
	if err := target.Delete(ctx, "shop/full-1.xb.zst"); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("second Delete: %v; want ErrNotFound", err)
	}
	if _, err := target.Open(ctx, "shop/full-1.xb.zst"); !errors.Is(err, backup.ErrNotFound) {
		t.Fatalf("Open of a deleted object: %v; want ErrNotFound", err)
	}
}

func readAll(t *testing.T, target backup.Target, name string) []byte {
	t.Helper()
	r, err := target.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the source broke") }

func TestOpenTargetErrors(t *testing.T) {
	for url, want := range map[string]string{
		"s3://bucket/x":       "unknown scheme",
		"hdfs:///no-namenode": "name the NameNode",
		"file://host/x":       "local path",
	} {
		if _, err := backup.OpenTarget(url, backup.Options{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenTarget(%q): %v; want an error saying %q", url, err, want)
		}
	}
}

// TestHDFSFull: a write to a full HDFS (the test HDFS's /full directory
// has a 1 MiB space quota) fails, saying so, and leaves nothing listed.
func TestHDFSFull(t *testing.T) {
	h := testutil.StartHDFS(t)
	target, err := backup.OpenTarget("hdfs://"+h.Addr+"/full/backups", backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = target.Put(ctx, "default/shop/full/x/dump.sql.zst", strings.NewReader(strings.Repeat("x", 4096)))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "quota") {
		t.Fatalf("Put to a full HDFS: %v; want an error naming the quota", err)
	}
	t.Logf("Put to a full HDFS: %v", err)
	if objs, err := target.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("after a failed Put: %v, %v; want nothing listed", objs, err)
	}
}
