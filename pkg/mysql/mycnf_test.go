package mysql

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/spec"
)

// go test ./pkg/mysql -run TestRenderConfig -update rewrites the golden files.
var updateMycnfGolden = flag.Bool("update", false, "rewrite the golden files under testdata/mycnf")

// cnfTestInstance is a member of a 3-node cluster as the executor would
// describe it: data on the persistent volume, the rest in the sandbox.
func cnfTestInstance() InstanceConfig {
	return InstanceConfig{
		Flavor:      spec.FlavorMariaDB,
		ServerID:    2,
		Port:        31002,
		BindAddress: "10.0.3.7",
		ReportHost:  "10.0.3.7",
		DataDir:     "/mnt/mesos/sandbox/mysos-volume/data",
		RunDir:      "/mnt/mesos/sandbox/run",
		LogDir:      "/mnt/mesos/sandbox/log",
		TmpDir:      "/mnt/mesos/sandbox/tmp",
		MemoryMiB:   1024,
		DiskMiB:     10240,
	}
}

type cnfGoldenCase struct {
	name string
	cfg  func() InstanceConfig
}

var cnfGoldenCases = []cnfGoldenCase{
	{"mariadb-member", cnfTestInstance},
	{"mariadb-semisync-overrides", func() InstanceConfig {
		c := cnfTestInstance()
		c.SemiSync = true
		c.Overrides = map[string]string{
			"max_connections":          "500",                                        // replaces a default
			"innodb-buffer-pool-size":  "256M",                                       // '-' spelling of a default
			"sql_mode":                 "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", // no default
			"init_connect":             `SET @app = 'orders #1'`,                     // '#' and quotes: quoted
			"skip_symbolic_links":      "",                                           // a bare flag
			"loose-performance_schema": "ON",                                         // loose_ still replaces the default
		}
		return c
	}},
	{"mysql8-semisync", func() InstanceConfig {
		c := cnfTestInstance()
		c.Flavor = spec.FlavorMySQL
		c.MemoryMiB = 4096
		c.SemiSync = true
		c.Overrides = map[string]string{"max_connections": "300"}
		return c
	}},
	{"mariadb-tiny-128Mi", func() InstanceConfig {
		c := cnfTestInstance()
		c.MemoryMiB, c.DiskMiB = 128, 256
		return c
	}},
	{"mariadb-large-64Gi", func() InstanceConfig {
		c := cnfTestInstance()
		c.MemoryMiB, c.DiskMiB = 64*1024, 2*1024*1024
		c.SemiSync = true
		return c
	}},
	{"mariadb-tls-required", func() InstanceConfig {
		c := cnfTestInstance()
		c.SemiSync = true
		c.TLS = &InstanceTLS{CAFile: "/mnt/mesos/sandbox/run/ca.pem", CertFile: "/mnt/mesos/sandbox/run/server-cert.pem",
			KeyFile: "/mnt/mesos/sandbox/run/server-key.pem", Required: true}
		return c
	}},
	{"mysql8-tls", func() InstanceConfig {
		c := cnfTestInstance()
		c.Flavor = spec.FlavorMySQL
		c.TLS = &InstanceTLS{CAFile: "/mnt/mesos/sandbox/run/ca.pem", CertFile: "/mnt/mesos/sandbox/run/server-cert.pem",
			KeyFile: "/mnt/mesos/sandbox/run/server-key.pem"}
		return c
	}},
	{"mysql8-large-64Gi", func() InstanceConfig {
		c := cnfTestInstance()
		c.Flavor = spec.FlavorMySQL
		c.MemoryMiB, c.DiskMiB = 64*1024, 0
		return c
	}},
}

func TestRenderConfigGolden(t *testing.T) {
	for _, tc := range cnfGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderConfig(tc.cfg())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "mycnf", tc.name+".cnf")
			if *updateMycnfGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/mysql -run TestRenderConfig -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered config (rerun with -update if the change is intended):\n%s",
					path, cnfLineDiff(string(want), string(got)))
			}
			again, _ := RenderConfig(tc.cfg())
			if !bytes.Equal(got, again) {
				t.Error("two renders of the same config differ")
			}
		})
	}
}

// cnfLineDiff lists the lines only in want (-) or only in got (+).
func cnfLineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}

// cnfOptions parses a rendered file into its options, in order.
func cnfOptions(t *testing.T, b []byte) [][2]string {
	t.Helper()
	var opts [][2]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") || line == "[mysqld]" {
			continue
		}
		k, v, _ := strings.Cut(line, " = ")
		opts = append(opts, [2]string{k, v})
	}
	return opts
}

func cnfValue(t *testing.T, b []byte, key string) (string, bool) {
	t.Helper()
	for _, o := range cnfOptions(t, b) {
		if o[0] == key {
			return o[1], true
		}
	}
	return "", false
}

func TestRenderConfigContents(t *testing.T) {
	for _, tc := range cnfGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			b, err := RenderConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("# Generated by Mysos")) || !bytes.Contains(b, []byte("\n[mysqld]\n")) {
				t.Errorf("missing header or [mysqld]:\n%s", b)
			}
			// Every option appears once, except the cumulative plugin_load_add.
			seen := map[string]bool{}
			for _, o := range cnfOptions(t, b) {
				n := cnfMatchName(o[0])
				if seen[n] && n != "plugin_load_add" {
					t.Errorf("option %s set twice", o[0])
				}
				seen[n] = true
			}
			want := map[string]string{
				"datadir": c.DataDir, "socket": c.SocketPath(), "pid_file": c.PIDFile(), "log_error": c.ErrorLog(),
				"tmpdir": c.TmpDir, "port": strconv.Itoa(c.Port), "bind_address": c.BindAddress,
				"report_host": c.ReportHost, "report_port": strconv.Itoa(c.Port), "server_id": "2",
				"log_bin": "binlog", "relay_log": "relay-bin", "read_only": "ON", "binlog_format": "ROW",
				"binlog_row_image": "FULL", "sync_binlog": "1", "innodb_flush_log_at_trx_commit": "1",
				"skip_name_resolve": "ON", "character_set_server": "utf8mb4",
			}
			if c.Flavor == spec.FlavorMariaDB {
				want["log_slave_updates"] = "ON"
				want["gtid_domain_id"] = "0"
				want["gtid_strict_mode"] = "ON"
			} else {
				want["log_replica_updates"] = "ON"
				want["super_read_only"] = "ON"
				want["gtid_mode"] = "ON"
				want["enforce_gtid_consistency"] = "ON"
			}
			if c.SemiSync && c.Flavor == spec.FlavorMariaDB {
				want["rpl_semi_sync_master_enabled"] = "OFF" // Mysos switches it on when it promotes
				want["rpl_semi_sync_slave_enabled"] = "ON"
				want["rpl_semi_sync_master_wait_point"] = "AFTER_SYNC"
				want["rpl_semi_sync_master_timeout"] = "4294967295"
			}
			if c.SemiSync && c.Flavor == spec.FlavorMySQL {
				want["rpl_semi_sync_source_enabled"] = "OFF"
				want["rpl_semi_sync_replica_enabled"] = "ON"
				want["rpl_semi_sync_source_wait_point"] = "AFTER_SYNC"
				want["rpl_semi_sync_source_timeout"] = "4294967295"
			}
			for k, v := range c.Overrides {
				want[k] = v
			}
			for k, v := range want {
				got, ok := cnfValue(t, b, k)
				if !ok {
					t.Errorf("%s is missing", k)
					continue
				}
				if v != "" && strings.Trim(got, `"`) != v && got != cnfQuote(v) {
					t.Errorf("%s = %s, want %s", k, got, v)
				}
			}
			if has := bytes.Contains(b, []byte("rpl_semi_sync_")); has != c.SemiSync {
				t.Errorf("semi-sync variables present = %v, SemiSync = %v", has, c.SemiSync)
			}
		})
	}
}

func TestConfigMemorySizing(t *testing.T) {
	for _, tc := range []struct {
		mem, disk float64
		want      cnfMemory
	}{
		// (128-96)/2 = 16 → the 32 MiB floor.
		{128, 0, cnfMemory{bufferPoolMiB: 32, bufferPoolInstances: 1, redoLogMiB: 16, logBufferMiB: 2, ariaMiB: 8, maxBinlogMiB: 1024, maxConnections: 50}},
		// The smallest volume caps the redo log at 256/8 and binlogs at 256/16.
		{128, 256, cnfMemory{bufferPoolMiB: 32, bufferPoolInstances: 1, redoLogMiB: 16, logBufferMiB: 2, ariaMiB: 8, maxBinlogMiB: 16, maxConnections: 50}},
		// (512-96)/2 = 208 → 192, a multiple of 64.
		{512, 0, cnfMemory{bufferPoolMiB: 192, bufferPoolInstances: 1, redoLogMiB: 48, logBufferMiB: 6, ariaMiB: 8, maxBinlogMiB: 1024, maxConnections: 64}},
		// (4096-96)/2 = 2000: one instance (2000/1024), → 1984.
		{4096, 0, cnfMemory{bufferPoolMiB: 1984, bufferPoolInstances: 1, redoLogMiB: 496, logBufferMiB: 62, ariaMiB: 64, maxBinlogMiB: 1024, maxConnections: 512}},
		// A 1 GiB volume caps the redo log at 128 MiB, binlog files at 64 MiB.
		{4096, 1024, cnfMemory{bufferPoolMiB: 1984, bufferPoolInstances: 1, redoLogMiB: 128, logBufferMiB: 62, ariaMiB: 64, maxBinlogMiB: 64, maxConnections: 512}},
		// (65536-96)/2 = 32720: 8 instances, a multiple of 512 → 32256; redo capped at 2 GiB.
		{65536, 0, cnfMemory{bufferPoolMiB: 32256, bufferPoolInstances: 8, redoLogMiB: 2048, logBufferMiB: 64, ariaMiB: 128, maxBinlogMiB: 1024, maxConnections: 1000}},
		// Fractions of a MiB are dropped; between 32 and 64 MiB the pool is exact.
		{200.9, 0, cnfMemory{bufferPoolMiB: 52, bufferPoolInstances: 1, redoLogMiB: 16, logBufferMiB: 2, ariaMiB: 8, maxBinlogMiB: 1024, maxConnections: 50}},
		// Below the validator's minimum the floors still hold.
		{16, 0, cnfMemory{bufferPoolMiB: 32, bufferPoolInstances: 1, redoLogMiB: 16, logBufferMiB: 2, ariaMiB: 8, maxBinlogMiB: 1024, maxConnections: 50}},
	} {
		t.Run(fmt.Sprintf("mem=%v,disk=%v", tc.mem, tc.disk), func(t *testing.T) {
			got := cnfSizeMemory(tc.mem, tc.disk)
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	// Invariants over the whole range the validator accepts (128 MiB to 16 TiB).
	for mem := 128.0; mem <= 16<<20; mem *= 1.37 {
		m := cnfSizeMemory(mem, 0)
		step := cnfChunkMiB * m.bufferPoolInstances
		switch {
		case m.bufferPoolMiB < cnfMinPoolMiB:
			t.Errorf("mem %v: pool %d below the floor", mem, m.bufferPoolMiB)
		case m.bufferPoolMiB >= cnfChunkMiB && m.bufferPoolMiB%step != 0:
			t.Errorf("mem %v: pool %d not a multiple of %d", mem, m.bufferPoolMiB, step)
		case mem >= 256 && float64(m.bufferPoolMiB) > mem/2:
			t.Errorf("mem %v: pool %d above half the memory", mem, m.bufferPoolMiB)
		case m.bufferPoolInstances < 1 || m.bufferPoolInstances > 8:
			t.Errorf("mem %v: %d instances", mem, m.bufferPoolInstances)
		}
	}
}

func TestRenderConfigErrors(t *testing.T) {
	long := "/mnt/" + strings.Repeat("x", cnfMaxSocketPath-len("/mnt/")-len("/"+cnfSocketName))
	for _, tc := range []struct {
		name   string
		modify func(*InstanceConfig)
		want   string // a substring of the error; "" means no error
	}{
		{"socket path of 107 bytes", func(c *InstanceConfig) { c.RunDir = long }, ""},
		{"socket path of 108 bytes", func(c *InstanceConfig) { c.RunDir = long + "y" }, long + "y/mysqld.sock"},
		{"newline in an override", func(c *InstanceConfig) { c.Overrides = map[string]string{"max_connections": "10\n[client]"} }, "mysqlConfig[max_connections]"},
		{"carriage return in an override", func(c *InstanceConfig) { c.Overrides = map[string]string{"sql_mode": "A\rB"} }, "mysqlConfig[sql_mode]"},
		{"NUL in an override", func(c *InstanceConfig) { c.Overrides = map[string]string{"sql_mode": "A\x00"} }, "mysqlConfig[sql_mode]"},
		{"leading [ in an override", func(c *InstanceConfig) { c.Overrides = map[string]string{"init_connect": " [client]"} }, "mysqlConfig[init_connect]"},
		{"'[' inside a value is fine", func(c *InstanceConfig) { c.Overrides = map[string]string{"init_connect": "SELECT '[x]'"} }, ""},
		{"override too long", func(c *InstanceConfig) {
			c.Overrides = map[string]string{"init_connect": strings.Repeat("x", 1025)}
		}, "mysqlConfig[init_connect]"},
		{"bad key", func(c *InstanceConfig) { c.Overrides = map[string]string{"max connections": "1"} }, "mysqld option names"},
		{"managed option", func(c *InstanceConfig) { c.Overrides = map[string]string{"server-id": "9"} }, "mysqlConfig[server-id]"},
		{"managed option behind loose-", func(c *InstanceConfig) { c.Overrides = map[string]string{"loose-server-id": "9"} }, "mysqlConfig[loose-server-id]"},
		{"managed option behind skip-", func(c *InstanceConfig) { c.Overrides = map[string]string{"skip-log-bin": ""} }, "mysqlConfig[skip-log-bin]"},
		{"same option twice", func(c *InstanceConfig) {
			c.Overrides = map[string]string{"max-connections": "1", "max_connections": "2"}
		}, "mysqlConfig[max_connections]"},
		{"server_id 0", func(c *InstanceConfig) { c.ServerID = 0 }, "server_id must not be 0"},
		{"unknown flavour", func(c *InstanceConfig) { c.Flavor = "percona" }, `unknown flavor "percona"`},
		{"empty flavour", func(c *InstanceConfig) { c.Flavor = "" }, `unknown flavor ""`},
		{"port 0", func(c *InstanceConfig) { c.Port = 0 }, "port 0"},
		{"port too high", func(c *InstanceConfig) { c.Port = 65536 }, "port 65536"},
		{"relative datadir", func(c *InstanceConfig) { c.DataDir = "data" }, `DataDir "data"`},
		{"no tmpdir", func(c *InstanceConfig) { c.TmpDir = "" }, "TmpDir is empty"},
		{"no report host", func(c *InstanceConfig) { c.ReportHost = "" }, "ReportHost is empty"},
		{"newline in a path", func(c *InstanceConfig) { c.LogDir = "/a\n[client]" }, "LogDir"},
		{"no memory", func(c *InstanceConfig) { c.MemoryMiB = 0 }, "MemoryMiB"},
		{"NaN memory", func(c *InstanceConfig) { c.MemoryMiB = math.NaN() }, "MemoryMiB"},
		{"negative disk", func(c *InstanceConfig) { c.DiskMiB = -1 }, "DiskMiB"},
		{"TLS without a key", func(c *InstanceConfig) {
			c.TLS = &InstanceTLS{CAFile: "/run/ca.pem", CertFile: "/run/cert.pem"}
		}, "TLS.KeyFile is empty"},
		{"TLS with a relative path", func(c *InstanceConfig) {
			c.TLS = &InstanceTLS{CAFile: "ca.pem", CertFile: "/run/cert.pem", KeyFile: "/run/key.pem"}
		}, `TLS.CAFile "ca.pem" is not an absolute path`},
		{"TLS path with a newline", func(c *InstanceConfig) {
			c.TLS = &InstanceTLS{CAFile: "/run/ca.pem", CertFile: "/run/cert.pem\n[client]", KeyFile: "/run/key.pem"}
		}, "TLS.CertFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cnfTestInstance()
			tc.modify(&c)
			b, err := RenderConfig(c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("no error; rendered:\n%s", b)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			case b != nil:
				t.Fatal("a config was returned along with the error")
			}
		})
	}
}

func TestConfigPaths(t *testing.T) {
	c := InstanceConfig{RunDir: "/run/x/", LogDir: "/log/y"}
	for got, want := range map[string]string{
		c.SocketPath(): "/run/x/mysqld.sock",
		c.PIDFile():    "/run/x/mysqld.pid",
		c.ErrorLog():   "/log/y/mysqld.err",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// my_print_defaults reads option files with the server's own parser: every
// value, however it was quoted, reaches mysqld unchanged.
func TestConfigValuesSurviveTheOptionParser(t *testing.T) {
	bin := testutil.RequireBinary(t, "my_print_defaults", "apt-get install -y mariadb-client-core")
	values := map[string]string{
		"v_plain":     "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
		"v_hash":      "a#b",
		"v_quotes":    `SET @x = 'it''s' "q"`,
		"v_backslash": `C:\dir\n\\`,
		"v_trailing":  `ends with \`,
		"v_spaces":    "  padded  ",
		"v_semicolon": "a;b",
		"v_quoted":    `"already quoted"`,
		"v_single":    `'`,
		"v_bracket":   "x [y]",
		"v_empty":     "",
	}
	c := cnfTestInstance()
	c.RunDir = "/mnt/run dir#1" // paths go through the same quoting
	c.Overrides = values
	b, err := RenderConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "my.cnf")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--defaults-file="+path, "mysqld").Output()
	if err != nil {
		t.Fatalf("my_print_defaults: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		k, v, hasValue := strings.Cut(strings.TrimPrefix(line, "--"), "=")
		if !hasValue {
			v = "(flag)"
		}
		got[k] = v
	}
	values["v_empty"] = "(flag)"
	values["socket"] = c.SocketPath()
	values["pid_file"] = c.PIDFile()
	for k, want := range values {
		if got[k] != want {
			t.Errorf("%s: mysqld would read %q, want %q (line %q)", k, got[k], want, strings.TrimSpace(cnfLine(k, want)))
		}
	}
}

// mariadbd --help --verbose parses the whole option file and fails on an
// unknown option or a value it cannot set; it prints the values it would
// run with. (MariaDB 10.11 has no --validate-config: it is MySQL's.) Out of
// range numbers are only adjusted, with a warning, so warnings fail the test
// too.
func TestConfigAcceptedByMariaDB(t *testing.T) {
	bin := testutil.RequireBinary(t, "mariadbd", "apt-get install -y mariadb-server")
	for _, tc := range cnfGoldenCases {
		c := tc.cfg()
		if c.Flavor != spec.FlavorMariaDB {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cnfLocalDirs(t, &c)
			b, err := RenderConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "my.cnf")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, cnfServerArgs(path, "--help", "--verbose")...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("mariadbd refused the config: %v\n%s\nconfig:\n%s", err, stderr.String(), b)
			}
			for _, line := range strings.Split(stderr.String(), "\n") {
				if (strings.Contains(line, "[ERROR]") || strings.Contains(line, "[Warning]")) && !cnfHarmlessWarning(line) {
					t.Errorf("mariadbd: %s", line)
				}
			}
			vars := cnfHelpVariables(stdout.String())
			mem := cnfSizeMemory(c.MemoryMiB, c.DiskMiB)
			want := map[string]string{
				"datadir":                        c.DataDir + "/",
				"socket":                         c.SocketPath(),
				"pid-file":                       c.PIDFile(),
				"log-error":                      c.ErrorLog(),
				"server-id":                      "2",
				"report-host":                    c.ReportHost,
				"read-only":                      "TRUE",
				"log-slave-updates":              "TRUE",
				"gtid-strict-mode":               "TRUE",
				"gtid-domain-id":                 "0",
				"binlog-format":                  "ROW",
				"sync-binlog":                    "1",
				"innodb-flush-log-at-trx-commit": "1",
				"performance-schema":             "FALSE",
				"character-set-server":           "utf8mb4",
				"innodb-log-file-size":           strconv.Itoa(mem.redoLogMiB << 20),
				"innodb-log-buffer-size":         strconv.Itoa(mem.logBufferMiB << 20),
				"aria-pagecache-buffer-size":     strconv.Itoa(mem.ariaMiB << 20),
				"max-binlog-size":                strconv.Itoa(mem.maxBinlogMiB << 20),
				"innodb-buffer-pool-size":        strconv.Itoa(mem.bufferPoolMiB << 20),
				"max-connections":                strconv.Itoa(mem.maxConnections),
			}
			for k := range c.Overrides { // the golden test covers what overrides do
				delete(want, strings.ReplaceAll(cnfMatchName(k), "_", "-"))
			}
			if c.SemiSync {
				want["rpl-semi-sync-master-enabled"] = "FALSE"
				want["rpl-semi-sync-slave-enabled"] = "TRUE"
				want["rpl-semi-sync-master-wait-point"] = "AFTER_SYNC"
				want["rpl-semi-sync-master-timeout"] = "4294967295"
				want["rpl-semi-sync-master-wait-no-slave"] = "TRUE"
			}
			for k, v := range want {
				if vars[k] != v {
					t.Errorf("mariadbd would run with %s = %q, want %q", k, vars[k], v)
				}
			}
		})
	}
}

// cnfLocalDirs points the instance's directories into the test's temporary
// directory.
func cnfLocalDirs(t *testing.T, c *InstanceConfig) {
	t.Helper()
	root := t.TempDir()
	c.DataDir = filepath.Join(root, "data")
	c.RunDir = filepath.Join(root, "run")
	c.LogDir = filepath.Join(root, "log")
	c.TmpDir = filepath.Join(root, "tmp")
	for _, d := range []string{c.DataDir, c.RunDir, c.LogDir, c.TmpDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

// cnfServerArgs puts --defaults-file first, as mariadbd requires, and adds
// --user=root when running as root (mariadbd refuses root otherwise).
func cnfServerArgs(cnf string, args ...string) []string {
	out := []string{"--defaults-file=" + cnf}
	if os.Geteuid() == 0 {
		out = append(out, "--user=root")
	}
	return append(out, args...)
}

func cnfHarmlessWarning(line string) bool {
	return strings.Contains(line, "Could not increase number of max_open_files") || // the machine's ulimit
		strings.Contains(line, "Could not open mysql.plugin table") // --help without a data directory
}

// cnfHelpVariables reads the "Variables (--variable-name=value)" table that
// --help --verbose ends with.
func cnfHelpVariables(out string) map[string]string {
	vars := map[string]string{}
	_, table, _ := strings.Cut(out, "\n-------------------------------------------------------")
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			vars[f[0]] = f[1]
		}
	}
	return vars
}

// The rendered config boots a real server: install the data directory with
// it, start mariadbd, and read back what matters from the running server.
func TestConfigBootsMariaDB(t *testing.T) {
	server := testutil.RequireBinary(t, "mariadbd", "apt-get install -y mariadb-server")
	installDB := testutil.RequireBinary(t, "mariadb-install-db", "apt-get install -y mariadb-server")
	client := testutil.RequireBinary(t, "mariadb", "apt-get install -y mariadb-client")

	c := cnfTestInstance()
	c.BindAddress, c.ReportHost = "127.0.0.1", "127.0.0.1"
	c.Port = testutil.FreePort(t)
	c.MemoryMiB, c.DiskMiB = 256, 1024
	c.SemiSync = true
	c.Overrides = map[string]string{"max_connections": "42", "init_connect": "SET @mysos = 'a#b'"}
	cnfLocalDirs(t, &c)
	b, err := RenderConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	cnf := filepath.Join(t.TempDir(), "my.cnf")
	if err := os.WriteFile(cnf, b, 0o600); err != nil {
		t.Fatal(err)
	}

	install := exec.Command(installDB, cnfServerArgs(cnf, "--skip-test-db", "--auth-root-authentication-method=normal")...)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db with the rendered config: %v\n%s", err, out)
	}

	srv := exec.Command(server, cnfServerArgs(cnf)...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})

	query := func(sql string) (string, error) {
		out, err := exec.Command(client, "--no-defaults", "--socket="+c.SocketPath(), "--user=root",
			"--batch", "--skip-column-names", "-e", sql).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	testutil.WaitFor(t, 30*time.Second, "mariadbd to accept connections on "+c.SocketPath(), func() bool {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(c.ErrorLog())
			t.Fatalf("mariadbd exited: %v\n%s", err, log)
		default:
		}
		_, err := query("SELECT 1")
		return err == nil
	})

	for sql, want := range map[string]string{
		"SELECT @@server_id":                              "2",
		"SELECT @@port":                                   strconv.Itoa(c.Port),
		"SELECT @@report_host":                            "127.0.0.1",
		"SELECT @@read_only":                              "1",
		"SELECT @@log_bin":                                "1",
		"SELECT @@log_bin_basename":                       filepath.Join(c.DataDir, "binlog"),
		"SELECT @@relay_log_basename":                     filepath.Join(c.DataDir, "relay-bin"),
		"SELECT @@log_slave_updates":                      "1",
		"SELECT @@gtid_strict_mode":                       "1",
		"SELECT @@binlog_format":                          "ROW",
		"SELECT @@sync_binlog":                            "1",
		"SELECT @@pid_file":                               c.PIDFile(),
		"SELECT @@log_error":                              c.ErrorLog(),
		"SELECT @@rpl_semi_sync_master_enabled":           "0",
		"SELECT @@rpl_semi_sync_slave_enabled":            "1",
		"SELECT @@rpl_semi_sync_master_wait_point":        "AFTER_SYNC",
		"SELECT @@rpl_semi_sync_master_timeout":           "4294967295",
		"SELECT @@innodb_buffer_pool_size DIV 1048576":    "64",
		"SELECT @@max_connections":                        "42",
		"SELECT @@init_connect":                           `SET @mysos = 'a#b'`,
		"SELECT @@character_set_server":                   "utf8mb4",
		"SELECT @@performance_schema":                     "0",
		"SELECT @@innodb_flush_log_at_trx_commit":         "1",
		"SELECT @@max_binlog_size DIV 1048576":            "64",
		"SELECT @@innodb_log_file_size DIV 1048576":       "16",
		"SELECT @@aria_pagecache_buffer_size DIV 1048576": "8",
	} {
		got, err := query(sql)
		if err != nil {
			t.Errorf("%s: %v: %s", sql, err, got)
			continue
		}
		if got != want {
			t.Errorf("%s = %q, want %q", sql, got, want)
		}
	}
	// Binary log names are stored relative to datadir, so the volume can be
	// mounted elsewhere by the next task.
	index, err := os.ReadFile(filepath.Join(c.DataDir, "binlog.index"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(index), "./binlog.") {
		t.Errorf("binlog.index holds %q, want names relative to datadir", index)
	}
	if pid, err := os.ReadFile(c.PIDFile()); err != nil || strings.TrimSpace(string(pid)) != strconv.Itoa(srv.Process.Pid) {
		t.Errorf("pid file %s: %q, %v; want %d", c.PIDFile(), pid, err, srv.Process.Pid)
	}
}
