package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/spec"
)

// TestPointInTimeRestore: with binlog archiving on, a backup is taken,
// writes go on across a failover (kill -9 of the primary's mysqld), a time
// T is noted between two batches of writes; a cluster restored at T holds
// exactly the rows committed before T, one restored at the last GTID
// before T the same, and one restored at the latest point every row.
func TestPointInTimeRestore(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	hdfs := testutil.StartHDFS(t)
	dest := "hdfs://" + hdfs.Addr + "/mysos/backups"
	c := startDevCluster(t, 4)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"),
		"--binlog-segment-seconds", "1")
	manifest := strings.Replace(fmt.Sprintf(backupManifest, "shop", 3, dest, ""), "    retention: {keep: 2}\n",
		"    retention: {keep: 2}\n    binlogArchiving: true\n", 1)
	manifest = strings.Replace(manifest, "spec:\n", "spec:\n  failover: {blockWindow: 1s}\n", 1)
	password, adminPW := startShop(t, s, manifest)
	write := func(from, to int) {
		t.Helper()
		insertRange(t, openMySQL(t, getCluster(t, s, "shop").Status.Endpoints.Primary, "app", password), from, to)
	}
	write(1, 100)
	s.mustCtl("backup", "create", "shop")
	full := lastBackup(t, s, "shop")
	write(101, 200)

	// A failover between the backup and T.
	before := getCluster(t, s, "shop")
	old := *instanceNamed(before, before.Status.CurrentPrimary)
	if err := syscall.Kill(mysqldPID(t, old), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "a new primary, Ready", func() bool {
		got := getCluster(t, s, "shop")
		return got.Status.CurrentPrimary != old.Name && readyTrue(got)
	})
	if m := scrapeMetrics(t, s); !strings.Contains(m, `mysos_operations_total{cluster="shop",kind="failover",namespace="default",result="completed"} 1`) {
		t.Fatalf("/metrics does not count the failover:\n%s", m)
	}
	write(201, 300)
	primary := openMySQL(t, getCluster(t, s, "shop").Status.Endpoints.Primary, "mysos_admin", adminPW)
	atT, lastGTID := tableSum(t, primary), gtidBinlogPos(t, primary)
	// Binary-log timestamps are whole seconds: T is the next second
	// boundary, and the next batch waits until the clock is past it.
	T := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	testutil.WaitFor(t, 5*time.Second, "the clock past T", func() bool { return time.Now().After(T.Add(100 * time.Millisecond)) })
	write(301, 400)
	all := tableSum(t, primary)
	waitArchived(t, dest, getCluster(t, s, "shop").Metadata.UID, full.GTIDPosition, gtidBinlogPos(t, primary))

	for _, tc := range []struct{ name, pointInTime, want string }{
		{"at-time", T.Format(time.RFC3339), atT},
		{"at-gtid", lastGTID, atT},
		{"latest", spec.PointInTimeLatest, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore := fmt.Sprintf("  restore: {from: shop/%s, pointInTime: %q}\n", full.ID, tc.pointInTime)
			s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), tc.name+".yaml", fmt.Sprintf(backupManifest, tc.name, 1, dest, restore)))
			s.mustCtl("wait", "clusters/"+tc.name, "--for=condition=Ready", "--timeout=180s")
			rc := getCluster(t, s, tc.name)
			pw := strings.TrimSpace(s.mustCtl("credentials", tc.name, "mysos_admin", "--all", "-o", "password"))
			db := openMySQL(t, rc.Status.Endpoints.Primary, "mysos_admin", pw)
			if got := tableSum(t, db); got != tc.want {
				t.Fatalf("restored at %s: %s; want %s", tc.pointInTime, got, tc.want)
			}
			t.Logf("restored at %s: %s, GTID position %s", tc.pointInTime, tc.want, rc.Status.Restore.GTIDPosition)
			s.mustCtl("delete", "clusters", tc.name)
		})
	}
}

func gtidBinlogPos(t testing.TB, db *sql.DB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pos string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	return pos
}

// waitArchived waits until the archive of shop (incarnation uid) reaches
// pos, then checks that it chains with no gap from from, the position of
// the full backup restores start at, to its end.
func waitArchived(t testing.TB, dest, uid, from, pos string) {
	t.Helper()
	target, err := backup.OpenTarget(dest, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	want, err := mysql.ParseGTIDSet("mariadb", pos)
	if err != nil {
		t.Fatal(err)
	}
	var end string
	if !testutil.Eventually(60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, ok, err := backup.LastSegment(ctx, target, "default", "shop", uid)
		if err != nil || !ok {
			return false
		}
		end = m.End
		got, err := mysql.ParseGTIDSet(m.Flavor, m.End)
		return err == nil && got.Contains(want)
	}) {
		t.Fatalf("the archive of shop ends at %q; the primary is at %s", end, pos)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	segs, err := archiveChain(ctx, target, "default", "shop", uid, from)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the archive chains with no gap from the backup's position %s: %d segments, %s to %s", from, len(segs), segs[0].FirstGTID, segs[len(segs)-1].LastGTID)
}

// archiveChain is the chain of segments a restore from a full backup at
// position from replays, across the failover: one chain with no gap from
// from (not from the first transaction: the retention that runs after each
// backup deletes the segments the oldest kept backup holds already, and
// whether the archive's first segment ended before the backup's position
// depends on timing). It fails if the chain is empty.
func archiveChain(ctx context.Context, target backup.Target, ns, cluster, uid, from string) ([]backup.SegmentManifest, error) {
	start, err := mysql.ParseGTIDSet("mariadb", from)
	if err != nil {
		return nil, err
	}
	segs, err := backup.Chain(ctx, target, ns, cluster, uid, start)
	if err == nil && len(segs) == 0 {
		err = errors.New("no segment after it")
	}
	if err != nil {
		return nil, fmt.Errorf("the archive does not chain from the backup's position %q: %d segments, %w", from, len(segs), err)
	}
	return segs, nil
}

// TestArchiveChainAfterRetention replays, deterministically, the archive
// of a run that failed: the first archiver stored a segment ending before
// the backup's position (0-3-1..25) and one past it, the retention that
// follows the backup deleted the first, and the archiver moved after the
// failover went on from the end. A restore from the backup replays with
// no gap; the archive no longer starts at the first transaction, which
// the check of TestPointInTimeRestore must therefore not ask for.
func TestArchiveChainAfterRetention(t *testing.T) {
	ctx := context.Background()
	target, err := backup.OpenTarget("file://"+t.TempDir(), backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	for _, seg := range []struct{ instance, start, end, first string }{
		{"shop-0", "", "0-3-25", "0-3-1"},
		{"shop-0", "0-3-25", "0-3-202", "0-3-26"},
		{"shop-1", "0-3-202", "0-1-402", "0-1-203"}, // relaunched after the failover
	} {
		m := backup.SegmentManifest{Namespace: "default", Cluster: "shop", ClusterUID: "uid", Instance: seg.instance, Flavor: "mariadb",
			Start: seg.start, End: seg.end, FirstGTID: seg.first, Transactions: 1}
		if _, err := backup.WriteSegment(ctx, target, m, strings.NewReader("binlog")); err != nil {
			t.Fatal(err)
		}
	}
	const backupAt = "0-3-102"
	keepFrom, err := mysql.ParseGTIDSet("mariadb", backupAt)
	if err != nil {
		t.Fatal(err)
	}
	if pruned, err := backup.Prune(ctx, target, "default", "shop", "uid", keepFrom); err != nil || len(pruned) != 1 {
		t.Fatalf("retention pruned %v, %v; want the first segment", pruned, err)
	}
	segs, err := archiveChain(ctx, target, "default", "shop", "uid", backupAt)
	if err != nil || len(segs) != 2 || segs[0].Start != "0-3-25" || segs[1].End != "0-1-402" {
		t.Fatalf("the chain from the backup: %d segments, %v; want both left, to 0-1-402", len(segs), err)
	}
	// From the first transaction: the gap the failed runs reported.
	if _, err := archiveChain(ctx, target, "default", "shop", "uid", ""); !errors.Is(err, backup.ErrGap) ||
		!strings.Contains(err.Error(), "replay starts at the empty position but the first segment after it") {
		t.Fatalf("the chain from the empty position: %v; want the gap retention leaves", err)
	}
}
