package mysql

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// A password with everything that needs escaping.
const nastyPassword = "it's a \\ \"pw\"\x00\n"

var src = Source{Host: "10.0.0.7", Port: 3307, User: "repl", Password: nastyPassword}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestMariaDBStatements(t *testing.T) {
	f := MariaDB
	eq(t, "ChangeSource", f.ChangeSource(src), []string{
		`CHANGE MASTER TO MASTER_HOST='10.0.0.7', MASTER_PORT=3307, MASTER_USER='repl', ` +
			`MASTER_PASSWORD='it\'s a \\ \"pw\"\0\n', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, ` +
			`MASTER_SSL=0, MASTER_SSL_CA='', MASTER_SSL_VERIFY_SERVER_CERT=0`})
	eq(t, "replica control", []string{f.StartReplica(), f.StopReplica(), f.StopReplicaIO(), f.ResetReplicaAll()},
		[]string{"START SLAVE", "STOP SLAVE", "STOP SLAVE IO_THREAD", "RESET SLAVE ALL"})
	eq(t, "SetReadOnly(true)", f.SetReadOnly(true), []string{"SET GLOBAL read_only=ON"})
	eq(t, "SetReadOnly(false)", f.SetReadOnly(false), []string{"SET GLOBAL read_only=OFF"})
	eq(t, "GTIDExecutedQuery", []string{f.GTIDExecutedQuery()}, []string{"SELECT @@GLOBAL.gtid_binlog_pos"})
	set := mustParse(t, "mariadb", "1-2-5,0-1-100")
	eq(t, "WaitForGTID", []string{f.WaitForGTID(set, 2500*time.Millisecond)},
		[]string{"SELECT MASTER_GTID_WAIT('0-1-100,1-2-5', 2.500)"})
	eq(t, "EnableSemiSync primary", f.EnableSemiSync(true, 1, 1500*time.Millisecond), []string{
		"SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
		"SET GLOBAL rpl_semi_sync_master_timeout=1500",
		"SET GLOBAL rpl_semi_sync_master_enabled=ON",
	})
	eq(t, "EnableSemiSync replica", f.EnableSemiSync(false, 0, 0), []string{
		"SET GLOBAL rpl_semi_sync_master_enabled=OFF",
		"SET GLOBAL rpl_semi_sync_slave_enabled=ON",
	})
	eq(t, "SetGTIDPosition", f.SetGTIDPosition(set), []string{"SET GLOBAL gtid_slave_pos='0-1-100,1-2-5'"})
	eq(t, "SetGTIDPosition empty", f.SetGTIDPosition(GTIDSet{}), []string{"SET GLOBAL gtid_slave_pos=''"})
}

func TestMySQL8Statements(t *testing.T) {
	f := MySQL8
	eq(t, "ChangeSource", f.ChangeSource(src), []string{
		`CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.7', SOURCE_PORT=3307, SOURCE_USER='repl', ` +
			`SOURCE_PASSWORD='it\'s a \\ \"pw\"\0\n', SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1, ` +
			`SOURCE_SSL=0, SOURCE_SSL_CA='', SOURCE_SSL_VERIFY_SERVER_CERT=0`})
	eq(t, "replica control", []string{f.StartReplica(), f.StopReplica(), f.StopReplicaIO(), f.ResetReplicaAll()},
		[]string{"START REPLICA", "STOP REPLICA", "STOP REPLICA IO_THREAD", "RESET REPLICA ALL"})
	eq(t, "SetReadOnly(true)", f.SetReadOnly(true), []string{"SET GLOBAL read_only=ON", "SET GLOBAL super_read_only=ON"})
	eq(t, "SetReadOnly(false)", f.SetReadOnly(false), []string{"SET GLOBAL super_read_only=OFF", "SET GLOBAL read_only=OFF"})
	eq(t, "GTIDExecutedQuery", []string{f.GTIDExecutedQuery()}, []string{"SELECT @@GLOBAL.gtid_executed"})
	set := mustParse(t, "mysql", u2+":1-3,\n"+u1+":1-5:6")
	eq(t, "WaitForGTID", []string{f.WaitForGTID(set, 4*time.Second)},
		[]string{"SELECT WAIT_FOR_EXECUTED_GTID_SET('" + u1 + ":1-6," + u2 + ":1-3', 4.000)"})
	eq(t, "EnableSemiSync primary", f.EnableSemiSync(true, 2, time.Second), []string{
		"SET GLOBAL rpl_semi_sync_source_wait_point=AFTER_SYNC",
		"SET GLOBAL rpl_semi_sync_source_timeout=1000",
		"SET GLOBAL rpl_semi_sync_source_wait_for_replica_count=2",
		"SET GLOBAL rpl_semi_sync_source_enabled=ON",
	})
	eq(t, "EnableSemiSync replica", f.EnableSemiSync(false, 0, 0), []string{
		"SET GLOBAL rpl_semi_sync_source_enabled=OFF",
		"SET GLOBAL rpl_semi_sync_replica_enabled=ON",
	})
	eq(t, "SetGTIDPosition", f.SetGTIDPosition(set), []string{
		"RESET MASTER", "SET GLOBAL gtid_purged='" + u1 + ":1-6," + u2 + ":1-3'"})
}

// TestChangeSourceTLS: replication over TLS, verifying the source against
// the replica's CA file, in each flavour's words; the settings are always
// stated in full, so switching TLS off clears them.
func TestChangeSourceTLS(t *testing.T) {
	verified := Source{Host: "10.0.0.7", Port: 3307, User: "repl", Password: "pw", TLS: true, CAFile: "/tmp/mysos-ab'c/ca.pem"}
	encrypted := Source{Host: "10.0.0.7", Port: 3307, User: "repl", Password: "pw", TLS: true}
	off := Source{Host: "10.0.0.7", Port: 3307, User: "repl", Password: "pw", CAFile: "/tmp/ignored.pem"}
	for _, tc := range []struct {
		f                       Flavor
		src                     Source
		wantSuffix, notContains string
	}{
		{MariaDB, verified, `MASTER_CONNECT_RETRY=1, MASTER_SSL=1, MASTER_SSL_CA='/tmp/mysos-ab\'c/ca.pem', MASTER_SSL_VERIFY_SERVER_CERT=1`, ""},
		{MariaDB, encrypted, `MASTER_CONNECT_RETRY=1, MASTER_SSL=1, MASTER_SSL_CA='', MASTER_SSL_VERIFY_SERVER_CERT=0`, ""},
		{MariaDB, off, `MASTER_CONNECT_RETRY=1, MASTER_SSL=0, MASTER_SSL_CA='', MASTER_SSL_VERIFY_SERVER_CERT=0`, "ignored"},
		{MySQL8, verified, `SOURCE_CONNECT_RETRY=1, SOURCE_SSL=1, SOURCE_SSL_CA='/tmp/mysos-ab\'c/ca.pem', SOURCE_SSL_VERIFY_SERVER_CERT=1`, "MASTER"},
		{MySQL8, encrypted, `SOURCE_CONNECT_RETRY=1, SOURCE_SSL=1, SOURCE_SSL_CA='', SOURCE_SSL_VERIFY_SERVER_CERT=0`, "MASTER"},
		{MySQL8, off, `SOURCE_CONNECT_RETRY=1, SOURCE_SSL=0, SOURCE_SSL_CA='', SOURCE_SSL_VERIFY_SERVER_CERT=0`, "ignored"},
	} {
		stmts := tc.f.ChangeSource(tc.src)
		if len(stmts) != 1 || !strings.HasSuffix(stmts[0], tc.wantSuffix) || (tc.notContains != "" && strings.Contains(stmts[0], tc.notContains)) {
			t.Errorf("%s ChangeSource(%+v) = %q; want it to end with %q", tc.f.Name(), tc.src, stmts, tc.wantSuffix)
		}
	}
}

func TestFlavorByName(t *testing.T) {
	for name, want := range map[string]Flavor{"mariadb": MariaDB, "mysql": MySQL8} {
		f, err := FlavorByName(name)
		if err != nil || f != want || f.Name() != name {
			t.Errorf("FlavorByName(%q) = %v, %v", name, f, err)
		}
		if _, err := f.ParseGTIDSet(""); err != nil {
			t.Errorf("%s: ParseGTIDSet(\"\"): %v", name, err)
		}
	}
	if _, err := FlavorByName("MySQL"); err == nil || !strings.Contains(err.Error(), `want "mariadb" or "mysql"`) {
		t.Errorf("FlavorByName(MySQL): %v", err)
	}
}

func TestCheckSemiSyncWaitCount(t *testing.T) {
	for _, tc := range []struct {
		f          Flavor
		n          int
		ok, unsupp bool
	}{
		{MariaDB, 1, true, false},
		{MariaDB, 2, false, true},
		{MariaDB, 0, false, false},
		{MySQL8, 3, true, false},
		{MySQL8, 0, false, false},
	} {
		err := CheckSemiSyncWaitCount(tc.f, tc.n)
		if (err == nil) != tc.ok || errors.Is(err, ErrUnsupported) != tc.unsupp {
			t.Errorf("CheckSemiSyncWaitCount(%s, %d) = %v", tc.f.Name(), tc.n, err)
		}
	}
}

func TestTimeoutFormats(t *testing.T) {
	if got := seconds(-time.Second); got != "0.000" {
		t.Errorf("seconds(-1s) = %s", got)
	}
	if got := millis(100 * time.Microsecond); got != 1 {
		t.Errorf("millis(100µs) = %d, want at least 1", got)
	}
}
