package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/spec"
)

const backupManifest = `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata:
  name: %s
spec:
  replicas: %d
  resources: {cpus: 100m, mem: 256Mi, disk: 512Mi}
  backup:
    destination: %s
    retention: {keep: 2}
  users:
    - name: app
      databases: [shop]
      privileges: [SELECT, INSERT, CREATE]
%s`

// TestBackupAndRestore takes full backups of a running cluster to a real
// HDFS, restores one into a new cluster (its primary from the backup, its
// replica seeded from that primary) and finds exactly the rows the backup
// held; a corrupted backup is refused at restore, retention deletes the
// oldest backup and only it, and a backup while HDFS is down fails
// visibly and leaves the cluster serving.
func TestBackupAndRestore(t *testing.T) {
	testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	hdfs := testutil.StartHDFS(t)
	dest := "hdfs://" + hdfs.Addr + "/mysos/backups"
	c := startDevCluster(t, 4)
	s := startScheduler(t, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, adminPW := startShop(t, s, fmt.Sprintf(backupManifest, "shop", 3, dest, ""))
	primary := openMySQL(t, getCluster(t, s, "shop").Status.Endpoints.Primary, "app", password)
	insertRange(t, primary, 1, 200)
	atBackup := tableSum(t, primary)

	out := s.mustCtl("backup", "create", "shop")
	first := lastBackup(t, s, "shop")
	if !strings.Contains(out, "complete") || first.Instance == getCluster(t, s, "shop").Status.CurrentPrimary || first.GTIDPosition == "" || first.Size == 0 {
		t.Fatalf("backup create said %q; backup %+v: want one of a replica, with its position and size", out, first)
	}
	if st := getCluster(t, s, "shop").Status.Backup; st == nil || st.Last == nil || st.Last.ID != first.ID {
		t.Fatalf("status.backup = %+v; want last = %s", st, first.ID)
	}
	insertRange(t, primary, 201, 300)

	t.Run("RestoreIntoANewCluster", func(t *testing.T) {
		restore := fmt.Sprintf("  restore: {from: shop/%s}\n", first.ID)
		s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "restored.yaml", fmt.Sprintf(backupManifest, "restored", 2, dest, restore)))
		s.mustCtl("wait", "clusters/restored", "--for=condition=Ready", "--timeout=180s")
		rc := getCluster(t, s, "restored")
		if rc.Status.Restore == nil || rc.Status.Restore.Phase != spec.RestoreDone {
			t.Fatalf("status.restore = %+v; want Restored", rc.Status.Restore)
		}
		restoredPW := strings.TrimSpace(s.mustCtl("credentials", "restored", "mysos_admin", "--all", "-o", "password"))
		for _, in := range rc.Status.Instances {
			db := openMySQL(t, fmt.Sprintf("%s:%d", in.Host, in.Port), "mysos_admin", restoredPW)
			var got string
			if !testutil.Eventually(60*time.Second, func() bool { got = tableSum(t, db); return got == atBackup }) {
				t.Fatalf("%s holds %s; the backup held %s", in.Name, got, atBackup)
			}
		}
		if r := s.ctl("apply", "-f", writeFile(t, t.TempDir(), "typo.yaml", fmt.Sprintf(backupManifest, "typo", 1, dest, "  restore: {from: shop/20200101T000000Z}\n"))); r.code == 0 || !strings.Contains(r.stderr, "spec.restore.from") {
			t.Fatalf("a restore from a backup that does not exist was accepted: exit %d, %s", r.code, r.stderr)
		}
	})

	t.Run("CorruptBackupIsRefused", func(t *testing.T) {
		s.mustCtl("backup", "create", "shop")
		second := lastBackup(t, s, "shop")
		corrupt(t, dest, second)
		restore := fmt.Sprintf("  restore: {from: shop/%s}\n", second.ID)
		s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "corrupt.yaml", fmt.Sprintf(backupManifest, "corrupt", 1, dest, restore)))
		testutil.WaitFor(t, 120*time.Second, "the restore refused as corrupt", func() bool {
			r := getCluster(t, s, "corrupt").Status.Restore
			return r != nil && r.Phase == spec.RestoreRunning && strings.Contains(r.Message, "corrupt")
		})
		t.Logf("restore refused: %s", getCluster(t, s, "corrupt").Status.Restore.Message)
		s.mustCtl("delete", "clusters", "corrupt")
	})

	t.Run("RetentionKeepsTheNewest", func(t *testing.T) {
		before := backupIDs(t, s, "shop")
		s.mustCtl("backup", "create", "shop")
		after := backupIDs(t, s, "shop")
		want := append(before[1:], lastBackup(t, s, "shop").ID)
		if len(before) != 2 || !slices.Equal(after, want) {
			t.Fatalf("backups %v, then %v after one more; keep 2 should leave %v", before, after, want)
		}
		if !strings.Contains(s.mustCtl("events", "shop"), "BackupDeleted") {
			t.Fatal("no BackupDeleted event")
		}
	})

	t.Run("HDFSFullFailsVisibly", func(t *testing.T) {
		full := "hdfs://" + hdfs.Addr + "/full/backups" // a 1 MiB space quota
		s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", fmt.Sprintf(backupManifest, "shop", 3, full, "")))
		r := s.ctl("backup", "create", "shop", "--timeout", "5m")
		if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "quota") {
			t.Fatalf("backup create to a full HDFS: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		t.Logf("backup create to a full HDFS: %s", strings.TrimSpace(r.stderr))
		for _, b := range backupList(t, s, "shop") {
			if b.Phase == spec.BackupPhaseComplete {
				t.Fatalf("a backup is listed as complete in the full destination: %+v", b)
			}
		}
		// Back to the working destination; the new generation is Ready.
		s.mustCtl("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", fmt.Sprintf(backupManifest, "shop", 3, dest, "")))
		waitReady(t, s)
	})

	t.Run("HDFSDownFailsVisibly", func(t *testing.T) {
		hdfs.Stop()
		r := s.ctl("backup", "create", "shop", "--timeout", "5m")
		if r.code == 0 || !strings.Contains(r.stderr, "failed") {
			t.Fatalf("backup create with HDFS down: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		t.Logf("backup create with HDFS down: %s", strings.TrimSpace(r.stderr))
		cl := getCluster(t, s, "shop")
		if cl.Status.Backup == nil || cl.Status.Backup.LastFailure == nil || !readyTrue(cl) {
			t.Fatalf("status %+v; want the failure recorded and the cluster Ready", cl.Status.Backup)
		}
		if !strings.Contains(s.mustCtl("events", "shop"), "BackupFailed") {
			t.Fatal("no BackupFailed event")
		}
		m := scrapeMetrics(t, s)
		for _, want := range []string{`mysos_backups_total{cluster="shop",namespace="default",result="failed"} 2`,
			`mysos_cluster_phase{cluster="shop",namespace="default",phase="Running"} 1`, `mysos_reconcile_duration_seconds_count`,
			`mysos_mesos_subscribed 1`, `mysos_etcd_request_duration_seconds_count{code="OK",method="Txn"}`,
			`mysos_mysql_questions_total{cluster="shop",instance="shop-1",namespace="default"}`,
			`mysos_backups_total{cluster="shop",namespace="default",result="succeeded"} 3`, `mysos_backup_last_success_timestamp_seconds{cluster="shop",namespace="default"}`} {
			if !strings.Contains(m, want) {
				t.Fatalf("/metrics lacks %s:\n%s", want, m)
			}
		}
		checkNoLoss(t, s, seq(1, 300), adminPW)
	})
}

func insertRange(t testing.TB, db *sql.DB, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		mustExec(t, db, fmt.Sprintf("INSERT INTO shop.w (id) VALUES (%d)", i))
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// tableSum is shop.w's row count and CHECKSUM TABLE.
func tableSum(t testing.TB, db *sql.DB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	var name string
	var sum sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM shop.w").Scan(&n); err != nil {
		return "error: " + err.Error()
	}
	if err := db.QueryRowContext(ctx, "CHECKSUM TABLE shop.w").Scan(&name, &sum); err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%d rows, checksum %d", n, sum.Int64)
}

func backupList(t testing.TB, s *scheduler, cluster string) []spec.Backup {
	t.Helper()
	var list spec.BackupList
	if err := json.Unmarshal([]byte(s.mustCtl("backup", "list", cluster, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func lastBackup(t testing.TB, s *scheduler, cluster string) spec.Backup {
	t.Helper()
	items := backupList(t, s, cluster)
	if len(items) == 0 || items[len(items)-1].Phase != spec.BackupPhaseComplete {
		t.Fatalf("backups of %s: %+v; want the last complete", cluster, items)
	}
	return items[len(items)-1]
}

func backupIDs(t testing.TB, s *scheduler, cluster string) []string {
	t.Helper()
	var ids []string
	for _, b := range backupList(t, s, cluster) {
		if b.Phase == spec.BackupPhaseComplete {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

// corrupt flips a byte in the middle of a backup's stored dump.
func corrupt(t testing.TB, dest string, b spec.Backup) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target, err := backup.OpenTarget(dest, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	name := path.Join(backup.Dir(b.Namespace, b.Cluster, b.ID), backup.DumpObject)
	r, err := target.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil || len(data) < 2 {
		t.Fatalf("read %s: %v (%d bytes)", name, err, len(data))
	}
	data[len(data)/2] ^= 0xff
	if _, err := target.Put(ctx, name, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// scrapeMetrics is what the scheduler serves at /metrics (no token).
func scrapeMetrics(t testing.TB, s *scheduler) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}
