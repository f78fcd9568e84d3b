package mysql_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
	"github.com/mysos-project/mysos/pkg/spec"
)

// TestRenderedConfigConfinesFileAccess: the my.cnf Mysos renders confines
// LOAD DATA, LOAD_FILE and INTO OUTFILE (secure_file_priv).
func TestRenderedConfigConfinesFileAccess(t *testing.T) {
	cnf, err := mysql.RenderConfig(mysql.InstanceConfig{
		Flavor: spec.FlavorMariaDB, ServerID: 1, Port: 31000, BindAddress: "10.0.0.1", ReportHost: "10.0.0.1",
		DataDir: "/sandbox/volume/data", RunDir: "/tmp/mysos-0123456789ab", LogDir: "/sandbox", TmpDir: "/sandbox/tmp",
		MemoryMiB: 1024, DiskMiB: 10240,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cnf), "secure_file_priv") {
		t.Errorf("my.cnf sets no secure_file_priv: LOAD_FILE/INTO OUTFILE/LOAD DATA reach every file mysqld's OS user can, "+
			"including other tenants' run directories and volumes on the same agent:\n%s", cnf)
	}
}

// TestAdminCannotReachOtherClustersFiles: configured as Mysos configures
// it, a server's admin account can neither read a 0600 file of another
// cluster owned by the same OS user nor write outside its own tmpdir.
func TestAdminCannotReachOtherClustersFiles(t *testing.T) {
	in := mysqltest.Start(t, mysqltest.Options{})
	other := t.TempDir() // stands for another cluster's /tmp/mysos-<hash>/
	secretFile := filepath.Join(other, "client-123.cnf")
	const secret = "[client]\nuser=mysos_admin\npassword=\"OTHER-TENANTS-PASSWORD\"\n"
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	db := in.Open(t).DB()
	var got sql.NullString
	if err := db.QueryRowContext(context.Background(), "SELECT LOAD_FILE(?)", secretFile).Scan(&got); err != nil {
		t.Fatal(err)
	}
	t.Logf("LOAD_FILE(%s) = %v %q", secretFile, got.Valid, got.String)
	if got.Valid && strings.Contains(got.String, "OTHER-TENANTS-PASSWORD") {
		t.Errorf("mysos_admin read another tenant's 0600 file %s through LOAD_FILE: %q", secretFile, got.String)
	}
	// LOAD_FILE insists on a world-readable file; LOAD DATA INFILE does not.
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE IF NOT EXISTS loot"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "CREATE TABLE loot.f (line TEXT)"); err != nil {
		t.Fatal(err)
	}
	_, loadErr := db.ExecContext(context.Background(), "LOAD DATA INFILE '"+secretFile+"' INTO TABLE loot.f LINES TERMINATED BY '\\n' (line)")
	var lines []string
	rows, err := db.QueryContext(context.Background(), "SELECT line FROM loot.f")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var l string
		_ = rows.Scan(&l)
		lines = append(lines, l)
	}
	rows.Close()
	t.Logf("LOAD DATA INFILE: err %v, rows %q", loadErr, lines)
	if strings.Contains(strings.Join(lines, "\n"), "OTHER-TENANTS-PASSWORD") {
		t.Errorf("mysos_admin read another tenant's 0600 file %s through LOAD DATA INFILE: %q", secretFile, lines)
	}
	out := filepath.Join(other, "planted")
	if _, err := db.ExecContext(context.Background(), "SELECT 'planted by a tenant' INTO OUTFILE '"+out+"'"); err == nil {
		if _, err := os.Stat(out); err == nil {
			t.Errorf("mysos_admin wrote %s outside its own sandbox (SELECT ... INTO OUTFILE)", out)
		}
	}
}
