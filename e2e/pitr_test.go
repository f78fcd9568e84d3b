package e2e

import (
	"context"
	"database/sql"
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
	waitArchived(t, dest, getCluster(t, s, "shop").Metadata.UID, gtidBinlogPos(t, primary))

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

// waitArchived waits until the archive of shop (incarnation uid) reaches pos.
func waitArchived(t testing.TB, dest, uid, pos string) {
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
	// Across the failover: one chain from the first transaction on, no gap.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	empty, _ := mysql.ParseGTIDSet("mariadb", "")
	segs, err := backup.Chain(ctx, target, "default", "shop", uid, empty)
	if err != nil || len(segs) == 0 {
		t.Fatalf("the archive does not chain from the start: %d segments, %v", len(segs), err)
	}
	t.Logf("the archive chains with no gap: %d segments, %s to %s", len(segs), segs[0].FirstGTID, segs[len(segs)-1].LastGTID)
}
