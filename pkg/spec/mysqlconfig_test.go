package spec

import (
	"strings"
	"testing"
)

// TestMySQLConfigRefusals: what reaches outside the instance or would read
// as more than one my.cnf line is refused, however it is spelled.
func TestMySQLConfigRefusals(t *testing.T) {
	set := func(k, v string) func(c *MySQLCluster) {
		return func(c *MySQLCluster) { c.Spec.MySQLConfig[k] = v }
	}
	runValidationCases(t, []validationCase{
		{"key starting with dashes", set("--skip-grant-tables", ""), "spec.mysqlConfig", ErrorTypeInvalid, "starting with a letter"},
		{"skip-grant-tables", set("skip-grant-tables", ""), "spec.mysqlConfig[skip-grant-tables]", ErrorTypeForbidden, "turns off authentication"},
		{"abbreviation of a managed option", set("datadi", "/tmp"), "spec.mysqlConfig[datadi]", ErrorTypeForbidden, "abbreviation of datadir"},
		{"abbreviation behind skip-", set("skip-grant", ""), "spec.mysqlConfig[skip-grant]", ErrorTypeForbidden, "abbreviation of grant_tables"},
		{"prefixes combined", set("loose-maximum-server-id", "5"), "spec.mysqlConfig[loose-maximum-server-id]", ErrorTypeForbidden, "Mysos sets server_id"},
		{"autoset prefix", set("autoset-port", ""), "spec.mysqlConfig[autoset-port]", ErrorTypeForbidden, "Mysos sets port"},
		{"plugin", set("plugin_load_add", "server_audit"), "spec.mysqlConfig[plugin_load_add]", ErrorTypeForbidden, "loads code"},
		{"init_file", set("init-file", "/etc/passwd"), "spec.mysqlConfig[init-file]", ErrorTypeForbidden, "names a file or directory"},
		{"a path by its name", set("innodb_doublewrite_dir", "/x"), "spec.mysqlConfig[innodb_doublewrite_dir]", ErrorTypeForbidden, "names a file or directory"},
		{"init_slave", set("init_slave", "SELECT 1"), "spec.mysqlConfig[init_slave]", ErrorTypeForbidden, "runs SQL"},
		{"extra listener", set("extra_port", "3307"), "spec.mysqlConfig[extra_port]", ErrorTypeForbidden, "opens a listener"},
		{"galera", set("wsrep_sst_method", "rsync"), "spec.mysqlConfig[wsrep_sst_method]", ErrorTypeForbidden, "Galera"},
		{"replication filter", set("replicate_wild_ignore_table", "shop.%"), "spec.mysqlConfig[replicate_wild_ignore_table]", ErrorTypeForbidden, "diverge"},
		{"unsafe character set", set("character-set-server", "SJIS"), "spec.mysqlConfig[character-set-server]", ErrorTypeForbidden, "sjis"},
		{"!include", set("init_connect", " !include /etc/passwd"), "spec.mysqlConfig[init_connect]", ErrorTypeInvalid, "!include"},
		{"escape character", set("init_connect", "SET @a = '\x1b[2J'"), "spec.mysqlConfig[init_connect]", ErrorTypeInvalid, "control characters"},
		{"bidi override", set("init_connect", "SET @a = 1 -- \u202e"), "spec.mysqlConfig[init_connect]", ErrorTypeInvalid, "U+202E"},
	})
}

// TestMySQLConfigAccepts: tuning options stay open, including real options
// that happen to be prefixes of refused ones, and the TLS options
// spec.tls leaves to the user when it is off.
func TestMySQLConfigAccepts(t *testing.T) {
	c := validCluster()
	for k, v := range map[string]string{
		"slow_query_log": "ON", "general_log": "OFF", "log_slow_query": "ON", "long_query_time": "2",
		"innodb_buffer_pool_instances": "2", "tmp_table_size": "64M", "skip_symbolic_links": "", "loose-performance_schema": "ON",
		"ssl_cipher": "TLS_AES_256_GCM_SHA384", "tls_version": "TLSv1.3", "character_set_server": "utf8mb4",
		"init_connect": "SELECT '[x]', '!x' -- '[' and '!' are fine inside", "sql_mode": "STRICT_TRANS_TABLES",
	} {
		c.Spec.MySQLConfig[k] = v
	}
	if errs := Validate(c); len(errs) > 0 {
		t.Fatalf("refused:\n%v", errs)
	}
}

// TestFieldPathsArePrintable: a map key or unknown field that could not be
// printed as it is appears quoted and escaped in the field path.
func TestFieldPathsArePrintable(t *testing.T) {
	c := validCluster()
	c.Metadata.Labels = map[string]string{"\x1b[31mred": "x y"}
	errs := Validate(c)
	if len(errs) != 2 || errs[1].Field != `metadata.labels["\x1b[31mred"]` {
		t.Fatalf("got %v", errs)
	}
	_, err := Decode([]byte(minimalYAML + "\"t\u0435am\u202e\": 1\n" + strings.Repeat("k", 200) + ": 1\n"))
	msg := err.Error()
	for _, want := range []string{`"t\u0435am\u202e": Unknown field`, `"` + strings.Repeat("k", 80) + `"... (200 bytes): Unknown field`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
}
