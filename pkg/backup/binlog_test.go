package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
)

func TestFileArchive(t *testing.T) {
	target, err := backup.OpenTarget("file://"+t.TempDir(), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	testArchive(t, target)
}

// TestHDFSArchive runs the same against a real HDFS.
func TestHDFSArchive(t *testing.T) {
	h := testutil.StartHDFS(t)
	target, err := backup.OpenTarget("hdfs://"+h.Addr+"/mysos/backups", backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Close() })
	testArchive(t, target)
}

func testArchive(t *testing.T, target backup.Target) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, ok, err := backup.LastSegment(ctx, target, "default", "shop", "uid-1"); ok || err != nil {
		t.Fatalf("LastSegment of an empty archive: %v, %v", ok, err)
	}
	if chain, err := backup.Chain(ctx, target, "default", "shop", "uid-1", pos(t, "0-1-42")); err != nil || len(chain) != 0 {
		t.Fatalf("Chain of an empty archive: %v, %v", chain, err)
	}

	// Three segments in a row, the last after a failover (server 2).
	data := sampleDump(1 << 20)
	s1 := writeSegment(t, target, "shop", "", "0-1-10", data)
	s2 := writeSegment(t, target, "shop", "0-1-10", "0-1-20", []byte("segment 2"))
	s3 := writeSegment(t, target, "shop", "0-1-20", "0-2-30", []byte("segment 3"))
	if !strings.HasPrefix(s1.Name, "00000000000000000010-") || s1.Object != s1.Name+".binlog.zst" ||
		s1.RawSize != int64(len(data)) || s1.Size >= s1.RawSize || s1.Format != backup.FormatBinlogZstd {
		t.Fatalf("segment 1: %+v", s1)
	}
	var out bytes.Buffer
	if err := readSegment(ctx, target, s1, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read back %d bytes (%v); wrote %d", out.Len(), err, len(data))
	}
	if last, ok, err := backup.LastSegment(ctx, target, "default", "shop", "uid-1"); !ok || err != nil || last != s3 {
		t.Fatalf("LastSegment: %+v, %v, %v; want %+v", last, ok, err, s3)
	}

	// An upload without manifest, a garbled manifest and another cluster's
	// segment are not listed.
	dataOnly := backup.SegmentName(12, time.Now())
	if _, _, err := backup.Upload(ctx, target, path.Join(backup.BinlogDir("default", "shop"), dataOnly+".binlog.zst"), strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	garbled := backup.SegmentName(25, time.Now())
	if _, err := target.Put(ctx, path.Join(backup.BinlogDir("default", "shop"), garbled+".json"), strings.NewReader("{")); err != nil {
		t.Fatal(err)
	}
	writeSegment(t, target, "shop2", "0-1-20", "0-1-25", []byte("another cluster"))
	checkSegments(t, target, s1.Name, s2.Name, s3.Name)

	// The chain from a position: what it lacks, from the segment holding
	// it; nothing when the archive ends there.
	for _, c := range []struct {
		from string
		want []string
	}{
		{"", []string{s1.Name, s2.Name, s3.Name}},
		{"0-1-5", []string{s1.Name, s2.Name, s3.Name}},
		{"0-1-10", []string{s2.Name, s3.Name}},
		{"0-1-15", []string{s2.Name, s3.Name}},
		{"0-2-30", nil},
		{"0-2-99", nil},
	} {
		chain, err := backup.Chain(ctx, target, "default", "shop", "uid-1", pos(t, c.from))
		if err != nil || !slices.Equal(names(chain), c.want) {
			t.Errorf("Chain from %q: %v (%v); want %v", c.from, names(chain), err, c.want)
		}
	}

	// A relaunched archiver that streamed 0-1-11..15 again: the overlap is
	// part of the chain, its replay skips what it has already.
	dup := writeSegment(t, target, "shop", "0-1-10", "0-1-15", []byte("again"))
	if chain, err := backup.Chain(ctx, target, "default", "shop", "uid-1", pos(t, "0-1-10")); err != nil ||
		!slices.Equal(names(chain), []string{dup.Name, s2.Name, s3.Name}) {
		t.Fatalf("Chain over an overlap: %v (%v)", names(chain), err)
	}

	// A gap: refused, naming both sides, unless the replay starts after it.
	s5 := writeSegment(t, target, "shop", "0-2-40", "0-2-50", []byte("after a gap"))
	_, err := backup.Chain(ctx, target, "default", "shop", "uid-1", pos(t, "0-1-5"))
	want := fmt.Sprintf("the archive of shop has a gap: segment %s ends at 0-2-30 but the next, %s, starts at 0-2-40", s3.Name, s5.Name)
	if !errors.Is(err, backup.ErrGap) || !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("Chain across a gap: %v; want ErrGap saying %q", err, want)
	}
	if chain, err := backup.Chain(ctx, target, "default", "shop", "uid-1", pos(t, "0-2-45")); err != nil || !slices.Equal(names(chain), []string{s5.Name}) {
		t.Fatalf("Chain from after the gap: %v (%v)", names(chain), err)
	}
	_, err = backup.Chain(ctx, target, "default", "shop2", "uid-1", pos(t, "0-1-5"))
	if !errors.Is(err, backup.ErrGap) || !strings.Contains(fmt.Sprint(err), "the archive of shop2 has a gap: replay starts at 0-1-5 but the first segment after it") {
		t.Fatalf("Chain from before the archive's start: %v", err)
	}

	// A segment replaced behind the archive's back is corrupt.
	if _, err := target.Put(ctx, path.Join(backup.BinlogDir("default", "shop"), s2.Object), bytes.NewReader(flip(mustStored(t, target, s2), 5))); err != nil {
		t.Fatal(err)
	}
	err = readSegment(ctx, target, s2, nil)
	if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), "binlog segment shop/"+s2.Name+" is corrupt: "+s2.Object+" has SHA-256 ") {
		t.Fatalf("reading a changed segment: %v; want ErrCorrupt naming it", err)
	}

	// Pruning from 0-1-20 deletes what ends there or before, and the
	// upload that failed before them; not what is newer.
	pruned, err := backup.Prune(ctx, target, "default", "shop", "uid-1", pos(t, "0-1-20"))
	if err != nil || !slices.Equal(pruned, []string{s1.Name, dup.Name, s2.Name}) {
		t.Fatalf("Prune: %v, %v", pruned, err)
	}
	checkSegments(t, target, s3.Name, s5.Name)
	objects, err := target.List(ctx, backup.BinlogDir("default", "shop")+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		if strings.Contains(o.Name, dataOnly) || strings.Contains(o.Name, s1.Name) {
			t.Errorf("after Prune %s is left", o.Name)
		}
	}
	if pruned, err := backup.Prune(ctx, target, "default", "shop", "uid-1", pos(t, "0-1-20")); err != nil || len(pruned) != 0 {
		t.Fatalf("Prune again: %v, %v", pruned, err)
	}
}

// Names sort as the segments' ends in domain 0, then as their times.
func TestSegmentNames(t *testing.T) {
	at := time.Date(2026, 11, 26, 4, 5, 12, 123456789, time.FixedZone("CET", 3600))
	if got := backup.SegmentName(57, at); got != "00000000000000000057-20261126T030512.123456789Z" {
		t.Fatalf("SegmentName: %s", got)
	}
	ordered := []string{
		backup.SegmentName(0, at), backup.SegmentName(9, at), backup.SegmentName(10, at),
		backup.SegmentName(10, at.Add(time.Nanosecond)), backup.SegmentName(18446744073709551615, at),
	}
	if !slices.IsSorted(ordered) {
		t.Fatalf("names do not sort as positions and times: %v", ordered)
	}
	// WriteSegment names a segment after domain 0 of its end.
	target, err := backup.OpenTarget("file://"+t.TempDir(), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for end, prefix := range map[string]string{"1-2-900,0-2-57": "00000000000000000057-", "1-2-900": "00000000000000000000-"} {
		if m := writeSegment(t, target, "shop", "", end, []byte("x")); !strings.HasPrefix(m.Name, prefix) {
			t.Errorf("segment ending at %s: named %s", end, m.Name)
		}
	}
}

func pos(t *testing.T, s string) mysql.GTIDSet {
	t.Helper()
	set, err := mysql.ParseGTIDSet("mariadb", s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func writeSegment(t *testing.T, target backup.Target, cluster, start, end string, data []byte) backup.SegmentManifest {
	t.Helper()
	at := time.Date(2026, 11, 26, 4, 5, 12, 0, time.UTC)
	m := backup.SegmentManifest{Namespace: "default", Cluster: cluster, ClusterUID: "uid-1", Instance: cluster + "-1",
		Flavor: "mariadb", ServerVersion: "10.11.6-MariaDB-log", Start: start, End: end, FirstGTID: "0-1-1", LastGTID: end,
		Transactions: 1, FirstEventTime: at, LastEventTime: at}
	m, err := backup.WriteSegment(context.Background(), target, m, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readSegment(ctx context.Context, target backup.Target, m backup.SegmentManifest, w io.Writer) error {
	r, err := backup.OpenSegment(ctx, target, m)
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

func mustStored(t *testing.T, target backup.Target, m backup.SegmentManifest) []byte {
	t.Helper()
	r, err := target.Open(context.Background(), path.Join(backup.BinlogDir(m.Namespace, m.Cluster), m.Object))
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

func checkSegments(t *testing.T, target backup.Target, want ...string) {
	t.Helper()
	list, err := backup.ListSegments(context.Background(), target, "default", "shop", "uid-1")
	if err != nil || !slices.Equal(names(list), want) {
		t.Fatalf("listed %v (%v); want %v", names(list), err, want)
	}
}

func names(segs []backup.SegmentManifest) []string {
	var out []string
	for _, m := range segs {
		out = append(out, m.Name)
	}
	return out
}
