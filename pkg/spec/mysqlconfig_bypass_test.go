package spec_test

import (
	"testing"

	"github.com/mysos-project/mysos/pkg/spec"
)

// TestNoBackslashEscapesCannotBeSetAnyWay: mariadbd 10.11 turns each of
// these into sql_mode NO_BACKSLASH_ESCAPES (a stripped loose- prefix, an
// abbreviated option, a prefix of the set member, a numeric set value),
// which would defeat the quoting of every SQL string Mysos writes.
func TestNoBackslashEscapesCannotBeSetAnyWay(t *testing.T) {
	for _, cfg := range []map[string]string{
		{"loose-sql-mode": "NO_BACKSLASH_ESCAPES"},
		{"loose_sql_mode": "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES"},
		{"sql-mod": "NO_BACKSLASH_ESCAPES"},
		{"sql_mode": "NO_BACKSLASH"},
		{"sql_mode": "ANSI,NO_BACKSL"},
		{"sql_mode": "1048576"},
	} {
		if err := spec.CheckMySQLConfig(cfg); err == nil {
			t.Errorf("mysqlConfig %v accepted: mariadbd runs with sql_mode NO_BACKSLASH_ESCAPES, which defeats Mysos' SQL quoting", cfg)
		}
	}
}

// TestFileNamingSSLOptionsAreRefused: with or without spec.tls, an ssl
// option naming a file (another cluster's key, say) is refused.
func TestFileNamingSSLOptionsAreRefused(t *testing.T) {
	for _, cfg := range []map[string]string{
		{"ssl_key": "/tmp/mysos-0123456789ab/server-key.pem"},
		{"ssl_cert": "/tmp/mysos-0123456789ab/server-cert.pem"},
		{"ssl_ca": "/etc/shadow"},
		{"ssl_capath": "/var/lib/mesos"},
		{"ssl_crlpath": "/var/lib/mesos"},
		// --language is MariaDB's deprecated alias of lc_messages_dir.
		{"language": "/var/lib/mesos"},
	} {
		if err := spec.CheckMySQLConfig(cfg); err == nil {
			t.Errorf("mysqlConfig %v accepted: it names a file or directory on the agent", cfg)
		}
	}
}
