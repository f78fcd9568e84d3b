package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// workloadTimeout bounds a backup, and a restore's start.
const workloadTimeout = 3 * time.Minute

// A backup to a local directory restores into a new member with the same
// rows and GTID position; after a byte of it is flipped, a restore fails
// saying the backup is corrupt, and leaves no data directory in place.
func TestBackupRestoreFile(t *testing.T) {
	root := t.TempDir()
	target := taskspec.Target{URL: "file://" + root}
	src, before := startSource(t)
	m, restored := backupAndRestore(t, src, target, before)

	// A member seeded from the restored one, which has logged nothing
	// since (its dump carries an empty position), starts at the backup's
	// position too.
	spec := restoreSpec(target, m.ID)
	spec.ServerID, spec.Restore, spec.Seed = 22, nil, &taskspec.Donor{Host: "127.0.0.1", Port: restored.Port}
	w, _, ep := mysqldWorkload(t, spec)
	checkCopy(t, w, ep, src, before)

	file := filepath.Join(root, filepath.FromSlash(path.Join(backup.Dir(m.Namespace, m.Cluster, m.ID), m.Object)))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(file, b, 0o640); err != nil {
		t.Fatal(err)
	}
	w, dataDir, _ := mysqldWorkload(t, restoreSpec(target, m.ID))
	ctx, cancel := context.WithTimeout(context.Background(), workloadTimeout)
	defer cancel()
	err = w.Start(ctx)
	_ = w.Stop(10 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "backup shop/"+m.ID+" is corrupt") {
		t.Fatalf("restoring a corrupt backup: %v; want a failed start saying it is corrupt", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after a failed restore the data directory is in place (%v)", err)
	}
}

// The same against a real HDFS.
func TestBackupRestoreHDFS(t *testing.T) {
	h := testutil.StartHDFS(t)
	src, before := startSource(t)
	backupAndRestore(t, src, taskspec.Target{URL: "hdfs://" + h.Addr + "/mysos/backups"}, before)
}

// A member without user databases has a backup all the same, at its
// position; a backup that fails says what failed and leaves nothing
// listed.
func TestBackupEdgeCases(t *testing.T) {
	root := t.TempDir()
	target := taskspec.Target{URL: "file://" + root}
	// reader may read the tables, not all that a dump reads.
	in := mysqltest.Start(t, mysqltest.Options{Users: []mysql.User{{Name: "reader", Host: "127.0.0.1", Password: "pw",
		Privileges: []string{"SELECT", "SLAVE MONITOR", "BINLOG MONITOR"}}}})
	ctx := context.Background()
	pos, err := in.Open(t).GTIDExecuted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	empty := backupSpec(in, target, "20261126T040512Z")
	if err := runBackup(t, empty); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, target, empty.ID)
	if m.GTIDPosition != pos.String() || len(m.Databases) != 0 || m.RawSize == 0 {
		t.Fatalf("manifest of a member without databases: %+v; want position %q", m, pos)
	}

	// The dump runs, but its directory cannot be made: the upload fails.
	mustExec(t, in.Open(t), "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)", "INSERT INTO shop.t VALUES (1)")
	blocked := backupSpec(in, target, "20261126T050000Z")
	if err := os.WriteFile(filepath.Join(root, "default", "shop", "full", blocked.ID), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = runBackup(t, blocked)
	want := "backup shop/" + blocked.ID + " to " + target.URL + ": upload dump.sql.zst: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("backup into a blocked directory: %v; want %q...", err, want)
	}

	// The dump fails: that is what the error tells, not the upload it broke.
	denied := backupSpec(in, target, "20261126T053000Z")
	denied.User, denied.Password = "reader", "pw"
	err = runBackup(t, denied)
	want = "backup shop/" + denied.ID + " to " + target.URL + ": dump: mariadb-dump: exit status 2: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "Access denied") {
		t.Fatalf("backup as an account short of privileges: %v; want %q... with mariadb-dump's complaint", err, want)
	}

	// Nobody at the source's address.
	gone := backupSpec(in, target, "20261126T060000Z")
	gone.Source.Port = testutil.FreePort(t)
	if err := runBackup(t, gone); err == nil || !strings.Contains(err.Error(), "read the state of shop-1") {
		t.Fatalf("backup of an unreachable member: %v", err)
	}
	list, err := backup.List(ctx, openTarget(t, target), "default", "shop")
	incomplete, ierr := backup.ListIncomplete(ctx, openTarget(t, target), "default", "shop")
	if err != nil || len(list) != 1 || list[0].ID != empty.ID || ierr != nil || len(incomplete) != 0 {
		t.Fatalf("listed %+v (%v), incomplete %v (%v); want only the backup that succeeded", list, err, incomplete, ierr)
	}
}

// startSource starts a member with a database worth copying and returns it
// with its GTID position.
func startSource(t *testing.T) (*mysqltest.Instance, mysql.GTIDSet) {
	t.Helper()
	in := mysqltest.Start(t, mysqltest.Options{})
	db := in.Open(t)
	mustExec(t, db,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(64), qty INT)",
		"INSERT INTO shop.orders SELECT seq, CONCAT('item ', seq), seq % 7 FROM shop.seq_1_to_5000",
		"CREATE VIEW shop.big AS SELECT * FROM shop.orders WHERE qty > 5",
		"CREATE PROCEDURE shop.total(OUT n INT) SELECT SUM(qty) INTO n FROM shop.orders")
	pos, err := db.GTIDExecuted(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return in, pos
}

// backupAndRestore backs src up to target, checks the manifest, restores it
// into a new member and checks its data; it returns the manifest and the
// restored member.
func backupAndRestore(t *testing.T, src *mysqltest.Instance, target taskspec.Target, before mysql.GTIDSet) (backup.Manifest, mysql.Endpoint) {
	t.Helper()
	spec := backupSpec(src, target, backup.NewID(time.Now()))
	if err := runBackup(t, spec); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, target, spec.ID)
	checkManifest(t, target, m, src, before)
	w, _, ep := mysqldWorkload(t, restoreSpec(target, spec.ID))
	checkCopy(t, w, ep, src, before)
	return m, ep
}

// checkCopy starts w, a new member, and checks that it holds src's data
// at position before, none of it in its own binary log.
func checkCopy(t *testing.T, w Workload, ep mysql.Endpoint, src *mysqltest.Instance, before mysql.GTIDSet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), workloadTimeout)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	db, err := mysql.Open(ep, mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, want := tableSummary(t, db), tableSummary(t, src.Open(t)); got != want {
		t.Fatalf("copied shop.orders: %s; the source has %s", got, want)
	}
	var total int
	if err := db.DB().QueryRowContext(ctx, "SELECT SUM(qty) FROM shop.big").Scan(&total); err != nil || total != 714*6 {
		t.Fatalf("copied view: %d, %v", total, err)
	}
	if pos, err := db.GTIDExecuted(ctx); err != nil || !pos.Equal(before) {
		t.Fatalf("the copy's GTID position %v (%v); want %v", pos, err, before)
	}
	var binlog string
	if err := db.DB().QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&binlog); err != nil || binlog != "" {
		t.Fatalf("the copy's gtid_binlog_pos %q (%v); want it empty", binlog, err)
	}
}

func checkManifest(t *testing.T, target taskspec.Target, m backup.Manifest, src *mysqltest.Instance, before mysql.GTIDSet) {
	t.Helper()
	if m.GTIDPosition != before.String() || !slices.Equal(m.Databases, []string{"shop"}) ||
		m.Flavor != "mariadb" || !strings.Contains(m.ServerVersion, "MariaDB") || m.Instance != "shop-1" ||
		m.ClusterUID != "uid-shop" || m.Format != backup.FormatSQLZstd || m.Duration() <= 0 {
		t.Fatalf("manifest %+v; want position %s of shop-1's database shop", m, before)
	}
	if now, err := src.Open(t).GTIDExecuted(context.Background()); err != nil || !now.Equal(before) {
		t.Fatalf("the source moved on (%v, %v): the test cannot check the position", now, err)
	}
	r, err := openTarget(t, target).Open(context.Background(), path.Join(backup.Dir(m.Namespace, m.Cluster, m.ID), m.Object))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 || m.RawSize <= m.Size {
		t.Fatalf("stored object: %d bytes with SHA-256 %x (%v); manifest: %d bytes (%d raw) with %s", n, h.Sum(nil), err, m.Size, m.RawSize, m.SHA256)
	}
}

// tableSummary describes shop.orders: rows, sums and checksum.
func tableSummary(t *testing.T, db *mysql.Server) string {
	t.Helper()
	ctx := context.Background()
	var rows, qty int64
	if err := db.DB().QueryRowContext(ctx, "SELECT COUNT(*), SUM(qty) FROM shop.orders").Scan(&rows, &qty); err != nil {
		t.Fatal(err)
	}
	var table string
	var sum int64
	if err := db.DB().QueryRowContext(ctx, "CHECKSUM TABLE shop.orders").Scan(&table, &sum); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, qty %d, checksum %d", rows, qty, sum)
}

func mustExec(t *testing.T, db *mysql.Server, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if err := db.Exec(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func backupSpec(src *mysqltest.Instance, target taskspec.Target, id string) taskspec.Backup {
	return taskspec.Backup{
		BackupRef:  taskspec.BackupRef{Target: target, Namespace: "default", Cluster: "shop", ID: id},
		ClusterUID: "uid-shop", Instance: "shop-1", Flavor: "mariadb",
		Source: taskspec.Donor{Host: "127.0.0.1", Port: src.Port},
		User:   mysqltest.AdminUser, Password: src.AdminPassword,
	}
}

// restoreSpec is a new member restored from a backup of shop.
func restoreSpec(target taskspec.Target, id string) *taskspec.MySQL {
	all := []string{"ALL PRIVILEGES"}
	pw := `r'e\stored`
	return &taskspec.MySQL{
		Flavor: "mariadb", ServerID: 21, Host: "127.0.0.1", MemoryMiB: 256, Admin: "mysos_admin",
		Users: []taskspec.User{
			{Name: "mysos_admin", Host: "localhost", Password: pw, Privileges: all, WithGrantOption: true},
			{Name: "mysos_admin", Host: "127.0.0.1", Password: pw, Privileges: all, WithGrantOption: true},
		},
		Restore: &taskspec.Restore{Backup: taskspec.BackupRef{Target: target, Namespace: "default", Cluster: "shop", ID: id}},
	}
}

// runBackup runs the backup workload as the executor would, until it ends,
// and returns how it ended.
func runBackup(t *testing.T, spec taskspec.Backup) error {
	t.Helper()
	w := newWorkload(t, taskspec.Data{Workload: taskspec.WorkloadBackup, Backup: &spec})
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("the backup workload did not start: %v", err)
	}
	defer w.Stop(0)
	timer := time.NewTimer(workloadTimeout)
	defer timer.Stop()
	select {
	case <-w.Done():
		return w.Err()
	case <-timer.C:
		t.Fatalf("the backup did not end within %s", workloadTimeout)
		return nil
	}
}

// mysqldWorkload is the mysql workload of a new task; it returns the data
// directory and the admin's TCP endpoint too.
func mysqldWorkload(t *testing.T, spec *taskspec.MySQL) (Workload, string, mysql.Endpoint) {
	t.Helper()
	port := testutil.FreePort(t)
	ports := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
		Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: uint64(port), End: uint64(port)}}}}
	vol := volume(256)
	w := newWorkload(t, taskspec.Data{Workload: taskspec.WorkloadMySQL, MySQL: spec}, vol, ports)
	t.Cleanup(func() { _ = w.Stop(30 * time.Second) })
	dataDir := w.(*mysqld).cfg.DataDir
	admin := spec.Users[1]
	return w, dataDir, mysql.Endpoint{Host: "127.0.0.1", Port: port, User: admin.Name, Password: admin.Password}
}

// newWorkload builds a task's workload with the executor's own factory,
// in a sandbox of its own.
func newWorkload(t *testing.T, data taskspec.Data, resources ...mesos.Resource) Workload {
	t.Helper()
	b, err := data.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	task := mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, Data: b, Resources: resources}
	w, err := Builtin()(task, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func openTarget(t *testing.T, target taskspec.Target) backup.Target {
	t.Helper()
	tg, err := backup.OpenTarget(target.URL, backup.Options{HadoopUser: target.HadoopUser})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func readManifest(t *testing.T, target taskspec.Target, id string) backup.Manifest {
	t.Helper()
	m, err := backup.ReadManifest(context.Background(), openTarget(t, target), "default", "shop", id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A backup task whose names cannot make a backup's directory fails at once.
func TestBackupRefusesBadNames(t *testing.T) {
	spec := taskspec.Backup{
		BackupRef: taskspec.BackupRef{Target: taskspec.Target{URL: "file:///nowhere"}, Cluster: "shop", ID: "20261126T040512Z"},
		Flavor:    "mariadb", Source: taskspec.Donor{Host: "127.0.0.1", Port: 3306},
	}
	for _, c := range []struct{ ns, id, want string }{{"", spec.ID, "namespace"}, {"default", "latest", `backup id "latest"`}} {
		spec.Namespace, spec.ID = c.ns, c.id
		b, err := taskspec.Data{Workload: taskspec.WorkloadBackup, Backup: &spec}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_, err = Builtin()(mesos.TaskInfo{TaskID: mesos.TaskID{Value: "b"}, Data: b}, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("namespace %q, id %q: %v; want an error saying %q", c.ns, c.id, err, c.want)
		}
	}
}
