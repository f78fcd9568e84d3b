package spec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// validCluster is a defaulted cluster using every section, so that each
// test case breaks exactly one rule.
func validCluster() *MySQLCluster {
	c := &MySQLCluster{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata: ObjectMeta{
			Name:        "orders",
			Namespace:   "shop",
			Labels:      map[string]string{"team": "shop", "example.com/tier": "db", "empty": ""},
			Annotations: map[string]string{"owner": "shop-oncall@example.com"},
		},
		Spec: ClusterSpec{
			Replicas:    ptr(int32(3)),
			Flavor:      "mariadb",
			Version:     "10.11",
			Resources:   Resources{CPUs: "500m", Memory: "1Gi", Disk: "10Gi"},
			MySQLConfig: map[string]string{"max_connections": "500", "innodb-buffer-pool-size": "512M", "skip_name_resolve": "ON"},
			Users: []User{
				{Name: "app", Databases: []string{"orders", "orders_archive"}, Privileges: []string{"SELECT", "INSERT"}, PasswordSecret: "app-password"},
				{Name: "app", Host: "10.0.%", Databases: []string{"orders"}},
				{Name: "monitor", Databases: []string{"*"}, Privileges: []string{"PROCESS", "REPLICATION CLIENT"}},
			},
			Placement: Placement{SpreadKey: "rack", Attributes: map[string]string{"zone": "eu-1"}, Role: "dba/mysos"},
			Backup:    &BackupSpec{Schedule: "0 3 * * *", Destination: "hdfs://namenode:8020/mysos/backups"},
			Restore:   &RestoreSpec{From: "orders-old/20261126T031500Z", Destination: "file:///var/lib/mysos/backups"},
			Router:    &RouterSpec{ReadWritePort: 6446, ReadOnlyPort: 6447},
		},
	}
	SetDefaults(c)
	return c
}

func deepCopy(t testing.TB, c *MySQLCluster) *MySQLCluster {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out MySQLCluster
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestValidateAcceptsValidCluster(t *testing.T) {
	if errs := Validate(validCluster()); len(errs) > 0 {
		t.Fatalf("valid cluster rejected:\n%v", errs)
	}
	minimal := &MySQLCluster{APIVersion: APIVersion, Kind: Kind, Metadata: ObjectMeta{Name: "a"}}
	SetDefaults(minimal)
	if errs := Validate(minimal); len(errs) > 0 {
		t.Fatalf("minimal cluster rejected:\n%v", errs)
	}
}

type validationCase struct {
	name   string
	mutate func(c *MySQLCluster)
	field  string
	typ    ErrorType
	detail string // a substring of the message
}

func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validCluster()
			tc.mutate(c)
			errs := Validate(c)
			if len(errs) != 1 {
				t.Fatalf("want exactly one error on %s, got %d:\n%v", tc.field, len(errs), errs)
			}
			e := errs[0]
			if e.Field != tc.field || e.Type != tc.typ || !strings.Contains(e.Error(), tc.detail) {
				t.Fatalf("got  %v\nwant %s: %s: ...%s...", e, tc.field, tc.typ, tc.detail)
			}
		})
	}
}

func TestValidateTypeAndMetadata(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"apiVersion missing", func(c *MySQLCluster) { c.APIVersion = "" }, "apiVersion", ErrorTypeRequired, "mysos.io/v1alpha1"},
		{"apiVersion wrong", func(c *MySQLCluster) { c.APIVersion = "mysos.io/v1" }, "apiVersion", ErrorTypeNotSupported, `supported values: "mysos.io/v1alpha1"`},
		{"kind wrong", func(c *MySQLCluster) { c.Kind = "MysqlCluster" }, "kind", ErrorTypeNotSupported, `supported values: "MySQLCluster"`},
		{"name missing", func(c *MySQLCluster) { c.Metadata.Name = "" }, "metadata.name", ErrorTypeRequired, "lowercase letters"},
		{"name uppercase", func(c *MySQLCluster) { c.Metadata.Name = "Orders" }, "metadata.name", ErrorTypeInvalid, "lowercase letters, digits and '-'"},
		{"name underscore", func(c *MySQLCluster) { c.Metadata.Name = "my_db" }, "metadata.name", ErrorTypeInvalid, ""},
		{"name leading dash", func(c *MySQLCluster) { c.Metadata.Name = "-db" }, "metadata.name", ErrorTypeInvalid, ""},
		{"name trailing dash", func(c *MySQLCluster) { c.Metadata.Name = "db-" }, "metadata.name", ErrorTypeInvalid, ""},
		{"name too long", func(c *MySQLCluster) { c.Metadata.Name = strings.Repeat("a", 54) }, "metadata.name", ErrorTypeTooLong, "at most 53 characters: the name is part of etcd keys, Mesos task ids and paths"},
		{"namespace invalid", func(c *MySQLCluster) { c.Metadata.Namespace = "Shop" }, "metadata.namespace", ErrorTypeInvalid, ""},
		{"namespace too long", func(c *MySQLCluster) { c.Metadata.Namespace = strings.Repeat("a", 64) }, "metadata.namespace", ErrorTypeTooLong, "at most 63"},
		{"namespace missing", func(c *MySQLCluster) { c.Metadata.Namespace = "" }, "metadata.namespace", ErrorTypeRequired, ""},
		{"label key invalid", func(c *MySQLCluster) { c.Metadata.Labels["bad key"] = "x" }, "metadata.labels", ErrorTypeInvalid, `"bad key": a key is a name`},
		{"label key prefix uppercase", func(c *MySQLCluster) { c.Metadata.Labels["Example.com/a"] = "x" }, "metadata.labels", ErrorTypeInvalid, "DNS subdomain"},
		{"label key two slashes", func(c *MySQLCluster) { c.Metadata.Labels["a/b/c"] = "x" }, "metadata.labels", ErrorTypeInvalid, ""},
		{"label key empty prefix", func(c *MySQLCluster) { c.Metadata.Labels["/a"] = "x" }, "metadata.labels", ErrorTypeInvalid, ""},
		{"label name too long", func(c *MySQLCluster) { c.Metadata.Labels[strings.Repeat("k", 64)] = "x" }, "metadata.labels", ErrorTypeInvalid, ""},
		{"label value invalid", func(c *MySQLCluster) { c.Metadata.Labels["team"] = "shop floor" }, "metadata.labels[team]", ErrorTypeInvalid, "a label value"},
		{"label value too long", func(c *MySQLCluster) { c.Metadata.Labels["team"] = strings.Repeat("v", 64) }, "metadata.labels[team]", ErrorTypeInvalid, ""},
		{"too many labels", func(c *MySQLCluster) {
			for i := range 62 {
				c.Metadata.Labels[fmt.Sprint("l", i)] = "x"
			}
		}, "metadata.labels", ErrorTypeTooLong, "has 65 labels; at most 64"},
		{"annotation key invalid", func(c *MySQLCluster) { c.Metadata.Annotations["a b"] = "x" }, "metadata.annotations", ErrorTypeInvalid, ""},
		{"annotations too large", func(c *MySQLCluster) { c.Metadata.Annotations["big"] = strings.Repeat("x", 256<<10) }, "metadata.annotations", ErrorTypeTooLong, "256 KiB"},
	})
}

func TestValidateSpecBasics(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"replicas zero", func(c *MySQLCluster) { c.Spec.Replicas = ptr(int32(0)) }, "spec.replicas", ErrorTypeInvalid, "scaling down to 0 is not supported"},
		{"replicas too many", func(c *MySQLCluster) { c.Spec.Replicas = ptr(int32(16)) }, "spec.replicas", ErrorTypeInvalid, "at most 15"},
		{"replicas unset", func(c *MySQLCluster) { c.Spec.Replicas = nil }, "spec.replicas", ErrorTypeRequired, ""},
		{"flavor unknown", func(c *MySQLCluster) { c.Spec.Flavor = "MariaDB" }, "spec.flavor", ErrorTypeNotSupported, `"mariadb", "mysql"`},
		{"version malformed", func(c *MySQLCluster) { c.Spec.Version = "10" }, "spec.version", ErrorTypeInvalid, "MAJOR.MINOR"},
		{"version with v", func(c *MySQLCluster) { c.Spec.Version = "v10.11" }, "spec.version", ErrorTypeInvalid, ""},
		{"version four parts", func(c *MySQLCluster) { c.Spec.Version = "10.11.6.1" }, "spec.version", ErrorTypeInvalid, ""},
		{"version empty", func(c *MySQLCluster) { c.Spec.Version = "" }, "spec.version", ErrorTypeRequired, ""},
	})
}

func TestValidateResources(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"cpus too small", func(c *MySQLCluster) { c.Spec.Resources.CPUs = "5m" }, "spec.resources.cpus", ErrorTypeInvalid, "at least 10m"},
		{"cpus too large", func(c *MySQLCluster) { c.Spec.Resources.CPUs = "1025" }, "spec.resources.cpus", ErrorTypeInvalid, "at most 1024"},
		{"cpus bad syntax", func(c *MySQLCluster) { c.Spec.Resources.CPUs = "2 cores" }, "spec.resources.cpus", ErrorTypeInvalid, `"2 cores": must not contain spaces`},
		{"cpus unset", func(c *MySQLCluster) { c.Spec.Resources.CPUs = "" }, "spec.resources.cpus", ErrorTypeRequired, "e.g. 500m"},
		{"mem too small", func(c *MySQLCluster) { c.Spec.Resources.Memory = "100Mi" }, "spec.resources.mem", ErrorTypeInvalid, "at least 128Mi: MariaDB alone uses 55-100 MiB when idle"},
		{"mem milli slip", func(c *MySQLCluster) { c.Spec.Resources.Memory = "512m" }, "spec.resources.mem", ErrorTypeInvalid, `write "Mi" for mebibytes`},
		{"mem too large", func(c *MySQLCluster) { c.Spec.Resources.Memory = "17Ti" }, "spec.resources.mem", ErrorTypeInvalid, "at most 16Ti"},
		{"mem bad suffix", func(c *MySQLCluster) { c.Spec.Resources.Memory = "1GB" }, "spec.resources.mem", ErrorTypeInvalid, "such as 500m, 512Mi or 2Gi"},
		{"mem negative", func(c *MySQLCluster) { c.Spec.Resources.Memory = "-1Gi" }, "spec.resources.mem", ErrorTypeInvalid, "must not be negative"},
		{"disk too small", func(c *MySQLCluster) { c.Spec.Resources.Disk = "10Mi" }, "spec.resources.disk", ErrorTypeInvalid, "at least 256Mi"},
		{"disk too large", func(c *MySQLCluster) { c.Spec.Resources.Disk = "2Pi" }, "spec.resources.disk", ErrorTypeInvalid, "at most 1Pi"},
		{"disk overflow", func(c *MySQLCluster) { c.Spec.Resources.Disk = "10E" }, "spec.resources.disk", ErrorTypeInvalid, "too large"},
	})
}

func TestValidateMySQLConfig(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"bad key", func(c *MySQLCluster) { c.Spec.MySQLConfig["max connections"] = "1" }, "spec.mysqlConfig", ErrorTypeInvalid, "mysqld option names"},
		{"key too long", func(c *MySQLCluster) { c.Spec.MySQLConfig[strings.Repeat("k", 65)] = "1" }, "spec.mysqlConfig", ErrorTypeInvalid, ""},
		{"managed key", func(c *MySQLCluster) { c.Spec.MySQLConfig["server_id"] = "1" }, "spec.mysqlConfig[server_id]", ErrorTypeForbidden, "Mysos sets server_id itself"},
		{"managed key with dashes", func(c *MySQLCluster) { c.Spec.MySQLConfig["bind-address"] = "0.0.0.0" }, "spec.mysqlConfig[bind-address]", ErrorTypeForbidden, "Mysos sets bind_address"},
		{"managed key upper case", func(c *MySQLCluster) { c.Spec.MySQLConfig["READ_ONLY"] = "1" }, "spec.mysqlConfig[READ_ONLY]", ErrorTypeForbidden, ""},
		{"managed key skip prefix", func(c *MySQLCluster) { c.Spec.MySQLConfig["skip-log-bin"] = "" }, "spec.mysqlConfig[skip-log-bin]", ErrorTypeForbidden, "Mysos sets log_bin"},
		{"managed key loose prefix", func(c *MySQLCluster) { c.Spec.MySQLConfig["loose-gtid-domain-id"] = "1" }, "spec.mysqlConfig[loose-gtid-domain-id]", ErrorTypeForbidden, ""},
		{"managed key loose skip", func(c *MySQLCluster) { c.Spec.MySQLConfig["loose_skip_networking"] = "" }, "spec.mysqlConfig[loose_skip_networking]", ErrorTypeForbidden, ""},
		{"value with newline", func(c *MySQLCluster) { c.Spec.MySQLConfig["max_connections"] = "1\n[client]" }, "spec.mysqlConfig[max_connections]", ErrorTypeInvalid, "single line"},
		{"value with NUL", func(c *MySQLCluster) { c.Spec.MySQLConfig["max_connections"] = "1\x00" }, "spec.mysqlConfig[max_connections]", ErrorTypeInvalid, ""},
		{"no backslash escapes", func(c *MySQLCluster) { c.Spec.MySQLConfig["sql-mode"] = "ANSI,no_backslash_escapes" }, "spec.mysqlConfig[sql-mode]", ErrorTypeForbidden, "NO_BACKSLASH_ESCAPES"},
		{"value like a section", func(c *MySQLCluster) { c.Spec.MySQLConfig["max_connections"] = "[client]" }, "spec.mysqlConfig[max_connections]", ErrorTypeInvalid, "section header"},
		{"semi-sync family", func(c *MySQLCluster) { c.Spec.MySQLConfig["rpl-semi-sync-master-enabled"] = "ON" }, "spec.mysqlConfig[rpl-semi-sync-master-enabled]", ErrorTypeForbidden, "Mysos sets rpl_semi_sync_master_enabled"},
		{"durability", func(c *MySQLCluster) { c.Spec.MySQLConfig["sync_binlog"] = "0" }, "spec.mysqlConfig[sync_binlog]", ErrorTypeForbidden, ""},
		{"failure detection", func(c *MySQLCluster) { c.Spec.MySQLConfig["slave-net-timeout"] = "60" }, "spec.mysqlConfig[slave-net-timeout]", ErrorTypeForbidden, ""},
		{"same option twice", func(c *MySQLCluster) {
			c.Spec.MySQLConfig["max-connections"] = "5"
			c.Spec.MySQLConfig["max_connections"] = "6"
		}, "spec.mysqlConfig[max_connections]", ErrorTypeInvalid, "same option"},
		{"value too long", func(c *MySQLCluster) { c.Spec.MySQLConfig["init_connect"] = strings.Repeat("x", 1025) }, "spec.mysqlConfig[init_connect]", ErrorTypeTooLong, "1024"},
		{"too many entries", func(c *MySQLCluster) {
			for i := range 198 {
				c.Spec.MySQLConfig[fmt.Sprint("opt", i)] = "1"
			}
		}, "spec.mysqlConfig", ErrorTypeTooLong, "has 201 entries"},
	})
	for _, k := range []string{"port", "socket", "datadir", "log_bin_basename", "relay_log", "gtid_strict_mode", "super_read_only",
		"pid_file", "log_error", "user", "innodb_data_home_dir", "tmpdir", "plugin_dir", "basedir", "disable-read-only"} {
		c := validCluster()
		c.Spec.MySQLConfig[k] = "x"
		if errs := Validate(c); len(errs) != 1 || errs[0].Type != ErrorTypeForbidden {
			t.Errorf("mysqlConfig %s: %v", k, errs)
		}
	}
}

func TestValidateUsers(t *testing.T) {
	user := func(c *MySQLCluster) *User { return &c.Spec.Users[0] }
	runValidationCases(t, []validationCase{
		{"name missing", func(c *MySQLCluster) { user(c).Name = "" }, "spec.users[0].name", ErrorTypeRequired, ""},
		{"name too long", func(c *MySQLCluster) { user(c).Name = strings.Repeat("u", 33) }, "spec.users[0].name", ErrorTypeInvalid, "32"},
		{"name bad char", func(c *MySQLCluster) { user(c).Name = "app@x" }, "spec.users[0].name", ErrorTypeInvalid, ""},
		{"name leading dot", func(c *MySQLCluster) { user(c).Name = ".app" }, "spec.users[0].name", ErrorTypeInvalid, ""},
		{"name root", func(c *MySQLCluster) { user(c).Name = "root" }, "spec.users[0].name", ErrorTypeForbidden, "server's own accounts"},
		{"name mysql.sys", func(c *MySQLCluster) { user(c).Name = "mysql.sys" }, "spec.users[0].name", ErrorTypeForbidden, ""},
		{"name mariadb.sys", func(c *MySQLCluster) { user(c).Name = "mariadb.sys" }, "spec.users[0].name", ErrorTypeForbidden, ""},
		{"name mysos prefix", func(c *MySQLCluster) { user(c).Name = "mysos_repl" }, "spec.users[0].name", ErrorTypeForbidden, "reserved for Mysos"},
		{"duplicate account", func(c *MySQLCluster) { c.Spec.Users[1].Host = "%" }, "spec.users[1].name", ErrorTypeInvalid, "already defined by spec.users[0]"},
		{"host empty", func(c *MySQLCluster) { user(c).Host = "" }, "spec.users[0].host", ErrorTypeRequired, ""},
		{"host with quote", func(c *MySQLCluster) { user(c).Host = "a'b" }, "spec.users[0].host", ErrorTypeInvalid, "without quotes"},
		{"host with space", func(c *MySQLCluster) { user(c).Host = "a b" }, "spec.users[0].host", ErrorTypeInvalid, ""},
		{"host with backslash", func(c *MySQLCluster) { user(c).Host = `a\b` }, "spec.users[0].host", ErrorTypeInvalid, ""},
		{"host too long", func(c *MySQLCluster) { user(c).Host = strings.Repeat("h", 256) }, "spec.users[0].host", ErrorTypeTooLong, ""},
		{"databases missing", func(c *MySQLCluster) { user(c).Databases = nil }, "spec.users[0].databases", ErrorTypeRequired, `["*"]`},
		{"database bad", func(c *MySQLCluster) { user(c).Databases[1] = "a.b" }, "spec.users[0].databases[1]", ErrorTypeInvalid, ""},
		{"database too long", func(c *MySQLCluster) { user(c).Databases[1] = strings.Repeat("d", 65) }, "spec.users[0].databases[1]", ErrorTypeInvalid, ""},
		{"privilege unknown", func(c *MySQLCluster) { user(c).Privileges[1] = "SUPER" }, "spec.users[0].privileges[1]", ErrorTypeNotSupported, `"SELECT"`},
		{"privilege grant option", func(c *MySQLCluster) { user(c).Privileges[0] = "GRANT OPTION" }, "spec.users[0].privileges[0]", ErrorTypeNotSupported, ""},
		{"global privilege on a database", func(c *MySQLCluster) { user(c).Privileges[0] = "PROCESS" }, "spec.users[0].privileges[0]", ErrorTypeInvalid, `set databases: ["*"]`},
		{"passwordSecret invalid", func(c *MySQLCluster) { user(c).PasswordSecret = "App_Password" }, "spec.users[0].passwordSecret", ErrorTypeInvalid, ""},
		{"too many users", func(c *MySQLCluster) {
			for i := range 98 {
				c.Spec.Users = append(c.Spec.Users, User{Name: fmt.Sprint("u", i), Host: "%", Databases: []string{"*"}, Privileges: []string{"ALL"}})
			}
		}, "spec.users", ErrorTypeTooLong, "at most 100"},
	})
	// Privileges are case-insensitive even without SetDefaults' upper-casing.
	c := validCluster()
	c.Spec.Users[0].Privileges = []string{"select", "Create View"}
	if errs := Validate(c); len(errs) > 0 {
		t.Errorf("lower-case privileges rejected: %v", errs)
	}
}

func TestValidatePlacement(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"spreadKey invalid", func(c *MySQLCluster) { c.Spec.Placement.SpreadKey = "rack id" }, "spec.placement.spreadKey", ErrorTypeInvalid, `"hostname", "none"`},
		{"spreadKey empty", func(c *MySQLCluster) { c.Spec.Placement.SpreadKey = "" }, "spec.placement.spreadKey", ErrorTypeRequired, ""},
		{"maxPerDomain zero", func(c *MySQLCluster) { c.Spec.Placement.MaxPerDomain = ptr(int32(0)) }, "spec.placement.maxPerDomain", ErrorTypeInvalid, "at least 1"},
		{"attribute name with colon", func(c *MySQLCluster) { c.Spec.Placement.Attributes["a:b"] = "x" }, "spec.placement.attributes", ErrorTypeInvalid, "';' or ':'"},
		{"attribute value with semicolon", func(c *MySQLCluster) { c.Spec.Placement.Attributes["zone"] = "eu;1" }, "spec.placement.attributes[zone]", ErrorTypeInvalid, ""},
		{"attribute value empty", func(c *MySQLCluster) { c.Spec.Placement.Attributes["zone"] = "" }, "spec.placement.attributes[zone]", ErrorTypeInvalid, "must not be empty"},
		{"attribute name empty", func(c *MySQLCluster) { c.Spec.Placement.Attributes[""] = "x" }, "spec.placement.attributes", ErrorTypeInvalid, ""},
		{"attribute too long", func(c *MySQLCluster) { c.Spec.Placement.Attributes["zone"] = strings.Repeat("z", 256) }, "spec.placement.attributes[zone]", ErrorTypeInvalid, "255"},
		{"role star", func(c *MySQLCluster) { c.Spec.Placement.Role = "*" }, "spec.placement.role", ErrorTypeInvalid, "unreserved role"},
		{"role dot", func(c *MySQLCluster) { c.Spec.Placement.Role = "." }, "spec.placement.role", ErrorTypeInvalid, "Mesos role"},
		{"role dotdot", func(c *MySQLCluster) { c.Spec.Placement.Role = ".." }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role leading dash", func(c *MySQLCluster) { c.Spec.Placement.Role = "-mysos" }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role whitespace", func(c *MySQLCluster) { c.Spec.Placement.Role = "my sos" }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role empty segment", func(c *MySQLCluster) { c.Spec.Placement.Role = "dba//mysos" }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role segment dot", func(c *MySQLCluster) { c.Spec.Placement.Role = "dba/./mysos" }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role trailing slash", func(c *MySQLCluster) { c.Spec.Placement.Role = "dba/" }, "spec.placement.role", ErrorTypeInvalid, ""},
		{"role empty", func(c *MySQLCluster) { c.Spec.Placement.Role = "" }, "spec.placement.role", ErrorTypeRequired, ""},
	})
	for _, key := range []string{"hostname", "none", "rack", "topology.zone", "a_b-c"} {
		c := validCluster()
		c.Spec.Placement.SpreadKey = key
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("spreadKey %q rejected: %v", key, errs)
		}
	}
}

func TestValidateBackupAndRestore(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"schedule six fields", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "0 0 3 * * *" }, "spec.backup.schedule", ErrorTypeInvalid, "five fields"},
		{"schedule out of range", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "0 25 * * *" }, "spec.backup.schedule", ErrorTypeInvalid, "above maximum"},
		{"schedule unknown descriptor", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "@nightly" }, "spec.backup.schedule", ErrorTypeInvalid, "unrecognized descriptor"},
		{"schedule too often", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "@every 10s" }, "spec.backup.schedule", ErrorTypeInvalid, "once a minute"},
		{"schedule negative every", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "@every -1h" }, "spec.backup.schedule", ErrorTypeInvalid, "once a minute"},
		{"schedule bare time zone", func(c *MySQLCluster) { c.Spec.Backup.Schedule = "TZ=UTC" }, "spec.backup.schedule", ErrorTypeInvalid, "time zone prefix"},
		{"destination s3", func(c *MySQLCluster) { c.Spec.Backup.Destination = "s3://bucket/backups" }, "spec.backup.destination", ErrorTypeInvalid, "must be an hdfs:// or file:// URL"},
		{"destination relative file", func(c *MySQLCluster) { c.Spec.Backup.Destination = "file://backups/x" }, "spec.backup.destination", ErrorTypeInvalid, "three slashes"},
		{"destination file root", func(c *MySQLCluster) { c.Spec.Backup.Destination = "file:///" }, "spec.backup.destination", ErrorTypeInvalid, "directory path"},
		{"destination no host", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs:///backups" }, "spec.backup.destination", ErrorTypeInvalid, "namenode host"},
		{"destination no path", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn:8020" }, "spec.backup.destination", ErrorTypeInvalid, "directory path"},
		{"destination root path", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn:8020/" }, "spec.backup.destination", ErrorTypeInvalid, "directory path"},
		{"destination bad port", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn:99999/b" }, "spec.backup.destination", ErrorTypeInvalid, "port"},
		{"destination empty port", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn:/b" }, "spec.backup.destination", ErrorTypeInvalid, "port"},
		{"destination query", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn/b?x=1" }, "spec.backup.destination", ErrorTypeInvalid, "query"},
		{"destination user", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://me@nn/b" }, "spec.backup.destination", ErrorTypeInvalid, "user"},
		{"destination space", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn/my backups" }, "spec.backup.destination", ErrorTypeInvalid, "spaces"},
		{"destination opaque", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs:nn/b" }, "spec.backup.destination", ErrorTypeInvalid, ""},
		{"destination not a URL", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn/%zz" }, "spec.backup.destination", ErrorTypeInvalid, "not a URL"},
		{"destination two ports", func(c *MySQLCluster) { c.Spec.Backup.Destination = "hdfs://nn:80:80/b" }, "spec.backup.destination", ErrorTypeInvalid, "host name or IP address"},
		{"keep zero", func(c *MySQLCluster) { c.Spec.Backup.Retention.Keep = ptr(int32(0)) }, "spec.backup.retention.keep", ErrorTypeInvalid, "between 1 and 1000"},
		{"keep too many", func(c *MySQLCluster) { c.Spec.Backup.Retention.Keep = ptr(int32(1001)) }, "spec.backup.retention.keep", ErrorTypeInvalid, ""},
		{"maxAge not a duration", func(c *MySQLCluster) { c.Spec.Backup.Retention.MaxAge = "30d" }, "spec.backup.retention.maxAge", ErrorTypeInvalid, "not a duration"},
		{"maxAge too short", func(c *MySQLCluster) { c.Spec.Backup.Retention.MaxAge = "10m" }, "spec.backup.retention.maxAge", ErrorTypeInvalid, "720h"},
		{"restore from missing", func(c *MySQLCluster) { c.Spec.Restore.From = "" }, "spec.restore.from", ErrorTypeRequired, "<cluster>/<backup-id>"},
		{"restore from without id", func(c *MySQLCluster) { c.Spec.Restore.From = "orders" }, "spec.restore.from", ErrorTypeInvalid, "<cluster>/<backup-id>"},
		{"restore from bad id", func(c *MySQLCluster) { c.Spec.Restore.From = "orders/latest" }, "spec.restore.from", ErrorTypeInvalid, "20261126T031500Z"},
		{"restore from bad cluster", func(c *MySQLCluster) { c.Spec.Restore.From = "Orders!/20261126T031500Z" }, "spec.restore.from", ErrorTypeInvalid, ""},
		{"restore destination", func(c *MySQLCluster) { c.Spec.Restore.Destination = "ftp://x/y" }, "spec.restore.destination", ErrorTypeInvalid, "hdfs://"},
		{"restore pointInTime date only", func(c *MySQLCluster) { c.Spec.Restore.PointInTime = "2026-11-26" }, "spec.restore.pointInTime", ErrorTypeInvalid, "2026-11-26T00:00:00Z"},
		{"restore pointInTime no zone", func(c *MySQLCluster) { c.Spec.Restore.PointInTime = "2026-11-26T04:00:00" }, "spec.restore.pointInTime", ErrorTypeInvalid, "RFC 3339"},
		{"restore pointInTime bad GTID", func(c *MySQLCluster) { c.Spec.Restore.PointInTime = "0-1" }, "spec.restore.pointInTime", ErrorTypeInvalid, "0-1-42"},
		{"restore pointInTime GTID list", func(c *MySQLCluster) { c.Spec.Restore.PointInTime = "0-1-42,1-2-3" }, "spec.restore.pointInTime", ErrorTypeInvalid, "0-1-42"},
	})
	for _, s := range []string{"@hourly", "@daily", "@weekly", "@monthly", "@every 1h", "*/15 * * * *", "0 3 * * MON-FRI", "CRON_TZ=Europe/Berlin 0 3 * * *"} {
		c := validCluster()
		c.Spec.Backup.Schedule = s
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("schedule %q rejected: %v", s, errs)
		}
	}
	for _, p := range []string{"latest", "2026-11-26T03:00:00Z", "2026-11-26T04:00:00.5+01:00", "0-1-42"} {
		c := validCluster()
		c.Spec.Restore.PointInTime = p
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("pointInTime %q rejected: %v", p, errs)
		}
	}
	for _, d := range []string{"hdfs://nn/b", "hdfs://nn:8020/a/b/c", "hdfs://[::1]:8020/b", "hdfs://10.0.0.1/b", "file:///var/backups", "file://localhost/b"} {
		c := validCluster()
		c.Spec.Backup.Destination = d
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("destination %q rejected: %v", d, errs)
		}
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := validCluster()
	c.Metadata.Name = ""
	c.Spec.Replicas = ptr(int32(20))
	c.Spec.Users[2].Name = "root"
	errs := Validate(c)
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got:\n%v", errs)
	}
	if got := Validate(nil); len(got) != 1 {
		t.Fatalf("Validate(nil) = %v", got)
	}
}

func TestIsDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "orders-db": true, "0": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "a_b": false, "-a": false, "a-": false, "a.b": false, strings.Repeat("a", 64): false,
	} {
		if IsDNSLabel(s) != want {
			t.Errorf("IsDNSLabel(%q) = %v", s, !want)
		}
	}
	if e := ValidateName("x", "ok", 2); e != nil {
		t.Errorf("ValidateName(ok, 2) = %v", e)
	}
	if e := ValidateName("x", "abc", 2); e == nil || e.Type != ErrorTypeTooLong {
		t.Errorf("ValidateName(abc, 2) = %v", e)
	}
}

func TestValidateUpdate(t *testing.T) {
	tests := []validationCase{
		{"rename", func(c *MySQLCluster) { c.Metadata.Name = "orders2" }, "metadata.name", ErrorTypeInvalid, "cannot be renamed"},
		{"move namespace", func(c *MySQLCluster) { c.Metadata.Namespace = "other" }, "metadata.namespace", ErrorTypeInvalid, "immutable"},
		{"flavor", func(c *MySQLCluster) { c.Spec.Flavor = "mysql"; c.Spec.Version = "10.11" }, "spec.flavor", ErrorTypeInvalid, "immutable"},
		{"version", func(c *MySQLCluster) { c.Spec.Version = "11.4" }, "spec.version", ErrorTypeInvalid,
			"in-place upgrades are not supported yet; create a new cluster restored from a backup"},
		{"role", func(c *MySQLCluster) { c.Spec.Placement.Role = "other" }, "spec.placement.role", ErrorTypeInvalid, "reserved for the role"},
		{"disk shrinks", func(c *MySQLCluster) { c.Spec.Resources.Disk = "9Gi" }, "spec.resources.disk", ErrorTypeInvalid, "persistent volumes cannot shrink"},
		{"restore changed", func(c *MySQLCluster) { c.Spec.Restore.From = "orders-old/20261126T031501Z" }, "spec.restore", ErrorTypeInvalid, "only happens when the cluster is created"},
		{"restore removed", func(c *MySQLCluster) { c.Spec.Restore = nil }, "spec.restore", ErrorTypeInvalid, ""},
		{"restore destination changed", func(c *MySQLCluster) { c.Spec.Restore.Destination = "hdfs://nn/b" }, "spec.restore", ErrorTypeInvalid, ""},
		{"new object invalid", func(c *MySQLCluster) { c.Spec.Replicas = ptr(int32(0)) }, "spec.replicas", ErrorTypeInvalid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oldC, newC := validCluster(), validCluster()
			tc.mutate(newC)
			errs := ValidateUpdate(oldC, newC)
			if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Type != tc.typ || !strings.Contains(errs[0].Error(), tc.detail) {
				t.Fatalf("got:\n%v\nwant one %s error ...%s...", errs, tc.field, tc.detail)
			}
		})
	}
	allowed := map[string]func(c *MySQLCluster){
		"disk grows":      func(c *MySQLCluster) { c.Spec.Resources.Disk = "20Gi" },
		"same disk":       func(c *MySQLCluster) { c.Spec.Resources.Disk = "10240Mi" },
		"scale":           func(c *MySQLCluster) { c.Spec.Replicas = ptr(int32(5)) },
		"memory shrinks":  func(c *MySQLCluster) { c.Spec.Resources.Memory = "512Mi" },
		"labels":          func(c *MySQLCluster) { c.Metadata.Labels["new"] = "x" },
		"backup schedule": func(c *MySQLCluster) { c.Spec.Backup.Schedule = "@hourly" },
	}
	for name, mutate := range allowed {
		oldC, newC := validCluster(), validCluster()
		mutate(newC)
		if errs := ValidateUpdate(oldC, newC); len(errs) > 0 {
			t.Errorf("%s refused: %v", name, errs)
		}
	}
}
