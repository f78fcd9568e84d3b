package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// spec.mysqlConfig becomes lines of the instance's my.cnf ([mysqld] section),
// written by pkg/mysql's generator, which checks them again with
// CheckMySQLConfig. The rules keep a user to tuning the server:
//
//   - a key is one option name, so no key can add a line, a section or an
//     !include directive; a value is one line of printable text that
//     cannot read as a section header or a directive either;
//   - options Mysos sets itself (identity, paths, networking, replication,
//     durability) are refused, whatever prefix mysqld would strip from them
//     (loose-, skip-, ...) and however they are abbreviated (MariaDB accepts
//     any unambiguous prefix of an option name: `datadi` is datadir);
//   - so are options that reach outside the instance: files and directories
//     on the agent, code loaded into the server, SQL run with its
//     privileges, authentication switched off, replication filters that
//     let replicas diverge, and character sets that defeat backslash
//     escaping.

const (
	maxConfigEntries  = 200
	maxConfigValueLen = 1024
)

// configKeyRE: a mysqld option name. It starts with a letter: mysqld
// prefixes every my.cnf key with "--", so a key starting with '-' would be
// read as something else.
var configKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// managedOptions are my.cnf options Mysos sets itself: replication,
// identity, paths and networking depend on them, and a user override would
// break the cluster in ways that are hard to trace back. Names use '_';
// MySQL treats '-' and '_' alike.
var managedOptions = map[string]bool{
	"server_id": true, "port": true, "socket": true, "datadir": true, "bind_address": true,
	"log_bin": true, "log_bin_basename": true, "log_bin_index": true, "relay_log": true, "relay_log_index": true,
	"log_basename": true, "gtid_domain_id": true, "gtid_strict_mode": true, "read_only": true,
	"super_read_only": true, "pid_file": true, "log_error": true, "skip_networking": true, "user": true,
	"innodb_data_home_dir": true, "tmpdir": true, "plugin_dir": true, "basedir": true,
	// Replication and durability: no acknowledged write may be lost, and
	// failover reads GTIDs from every member.
	"report_host": true, "report_port": true, "log_slave_updates": true, "log_replica_updates": true,
	"gtid_mode": true, "enforce_gtid_consistency": true, "binlog_format": true, "sync_binlog": true,
	"innodb_flush_log_at_trx_commit": true, "relay_log_recovery": true,
	// Failure detection counts on replicas noticing a silent source.
	"slave_net_timeout": true, "replica_net_timeout": true,
	"skip_slave_start": true, "skip_replica_start": true,
	// The X Protocol listener is off: it would take a port Mysos did not reserve.
	"mysqlx": true,
	// spec.tls.required sets it; set alone it would lock Mysos out.
	secureTransportOption: true,
}

// managedPrefixes are option families Mysos sets itself: semi-sync (turning
// its primary side on at boot stalls every replica).
var managedPrefixes = []string{"rpl_semi_sync_"}

// Why options outside Mysos's management are refused. Each is completed
// with the option's name.
const (
	whyAuth    = "%s turns off authentication and privilege checks: anyone reaching the port would be root"
	whyCode    = "%s loads code into the server, outside what Mysos installs and checks"
	whySQL     = "%s runs SQL with the server's own privileges at every start or replication connection, past the accounts Mysos manages"
	whyFile    = "%s names a file or directory on the agent; Mysos places the instance's files in its sandbox and volume itself"
	whyNetwork = "%s opens a listener on a port or path Mysos did not reserve from Mesos"
	whyGalera  = "%s configures Galera (wsrep), which Mysos does not run and whose hooks start commands on the agent"
	whyFilter  = "%s filters or skips replicated changes: replicas would silently diverge from the primary, and a failover would lose data"
)

// unsafeOptions are refused options, by name, with the reason.
var unsafeOptions = map[string]string{
	"grant_tables": whyAuth, // skip-grant-tables
	"secure_auth":  whyAuth,

	"plugin_load": whyCode, "plugin_load_add": whyCode, "early_plugin_load": whyCode, "plugin_maturity": whyCode,
	"gdb": whyCode, "debug": whyCode, "debug_dbug": whyCode,

	"init_slave": whySQL, "init_replica": whySQL,

	"init_file": whyFile, "secure_file_priv": whyFile, "language": whyFile, "general_log_file": whyFile, "slow_query_log_file": whyFile,
	"log_slow_query_file": whyFile, "relay_log_info_file": whyFile, "master_info_file": whyFile,
	"innodb_data_file_path": whyFile, "innodb_temp_data_file_path": whyFile, "innodb_undo_directory": whyFile,
	"innodb_log_group_home_dir": whyFile, "innodb_tmpdir": whyFile, "slave_load_tmpdir": whyFile,
	"replica_load_tmpdir": whyFile, "character_sets_dir": whyFile, "lc_messages_dir": whyFile,
	"aria_log_dir_path": whyFile, "log_tc": whyFile, "log_isam": whyFile, "core_file": whyFile, "chroot": whyFile,
	"keyring_file_data": whyFile, "file_key_management_filename": whyFile,
	"server_audit_file_path": whyFile, "innodb_buffer_pool_filename": whyFile,

	"admin_address": whyNetwork, "admin_port": whyNetwork, "extra_port": whyNetwork, "mysqlx_port": whyNetwork,
	"mysqlx_bind_address": whyNetwork, "mysqlx_socket": whyNetwork, "named_pipe": whyNetwork,
	"shared_memory": whyNetwork, "proxy_protocol_networks": whyNetwork,

	"binlog_do_db": whyFilter, "binlog_ignore_db": whyFilter, "slave_skip_errors": whyFilter,
	"replica_skip_errors": whyFilter, "slave_exec_mode": whyFilter, "replica_exec_mode": whyFilter,
}

// unsafePrefixes and unsafeSuffixes refuse whole families: Galera,
// replication filters, and options whose name says they hold a path.
var (
	unsafePrefixes = map[string]string{"wsrep_": whyGalera, "replicate_": whyFilter}
	unsafeSuffixes = map[string]string{"_file": whyFile, "dir": whyFile, "_directory": whyFile, "path": whyFile, "filename": whyFile}
)

// realOptions are options that are also a prefix of a refused one; they
// are not abbreviations (slow_query_log is not short for slow_query_log_file).
var realOptions = map[string]bool{
	"general_log": true, "slow_query_log": true, "log_slow_query": true, "ssl": true,
}

// Option prefixes mysqld strips before looking an option up: loose_,
// maximum_ and (MariaDB) autoset_ modify any option, skip_/enable_/disable_
// set booleans. They combine ("loose-skip-log-bin"), so optionNames strips
// them repeatedly.
var (
	modifierPrefixes = []string{"loose_", "maximum_"}
	booleanPrefixes  = []string{"skip_", "enable_", "disable_"}
	optionPrefixes   = slices.Concat(modifierPrefixes, []string{"autoset_"}, booleanPrefixes)
)

// unsafeCharsets are multi-byte character sets in which the byte 0x5c
// ('\') can end a character: a backslash-escaped quote is then read as a
// character and a live quote, which breaks the quoting of every SQL string
// Mysos writes.
var unsafeCharsets = []string{"big5", "cp932", "gbk", "gb18030", "sjis"}

// CheckMySQLConfig applies spec.mysqlConfig's rules to cfg; the my.cnf
// generator checks its overrides with it again, so the rules live in one
// place.
func CheckMySQLConfig(cfg map[string]string) error {
	return validateMySQLConfig("spec.mysqlConfig", cfg).Err()
}

func validateMySQLConfig(path string, cfg map[string]string) ErrorList {
	var errs ErrorList
	if len(cfg) > maxConfigEntries {
		errs = append(errs, tooLongErr(path, nil, fmt.Sprintf("has %d entries; at most %d are allowed", len(cfg), maxConfigEntries)))
	}
	seen := map[string]string{}
	for _, k := range sortedMapKeys(cfg) {
		errs = append(errs, validateConfigEntry(path, k, cfg[k])...)
		norm := normalizeOption(k)
		if other, dup := seen[norm]; dup {
			errs = append(errs, invalidErr(keyPath(path, k), nil, fmt.Sprintf("names the same option as %q ('-' and '_' are the same to mysqld); keep one", other)))
		}
		seen[norm] = k
	}
	return errs
}

func validateConfigEntry(path, k, v string) ErrorList {
	if !configKeyRE.MatchString(k) {
		return ErrorList{invalidErr(path, k, "keys are mysqld option names of 1 to 64 letters, digits, '_' or '-', starting with a letter, e.g. max_connections")}
	}
	if msg := optionProblem(k); msg != "" {
		return ErrorList{forbiddenErr(keyPath(path, k), nil, msg+"; remove it from mysqlConfig")}
	}
	p := keyPath(path, k)
	switch first := strings.TrimSpace(v); {
	case strings.ContainsAny(v, "\n\r\x00"):
		return ErrorList{invalidErr(p, v, "must be a single line without NUL characters: it is written into my.cnf")}
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }):
		return ErrorList{invalidErr(p, v, "must not contain control characters: it is written into my.cnf")}
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.Is(unicode.Cf, r) }):
		return ErrorList{invalidErr(p, v, "must not contain invisible formatting characters (such as U+202E, which reverses the text around it): "+
			"my.cnf would not read as it looks")}
	case strings.HasPrefix(first, "["):
		return ErrorList{invalidErr(p, v, "must not start with '[': my.cnf would read it as a section header")}
	case strings.HasPrefix(first, "!"):
		return ErrorList{invalidErr(p, v, "must not start with '!': my.cnf would read it as an !include directive")}
	case len(v) > maxConfigValueLen:
		return ErrorList{tooLongErr(p, v, fmt.Sprintf("must be at most %d characters", maxConfigValueLen))}
	}
	return valueProblem(p, k, v)
}

// valueProblem checks the values of the few options whose value, not
// name, could break Mysos.
func valueProblem(path, k, v string) ErrorList {
	for _, name := range optionNames(k) {
		if errs := valueProblemOf(path, name, v); errs != nil {
			return errs
		}
	}
	return nil
}

// isSQLMode reports whether option name is sql_mode or an abbreviation
// mysqld would read as it.
func isSQLMode(name string) bool {
	return len(name) >= len("sql_m") && strings.HasPrefix("sql_mode", name)
}

// setsNoBackslashEscapes reports whether an sql_mode value turns
// NO_BACKSLASH_ESCAPES on: by name, by a prefix of it (mysqld accepts
// unambiguous prefixes of set members) or by a numeric set value.
func setsNoBackslashEscapes(v string) bool {
	for _, item := range strings.Split(v, ",") {
		item = strings.ToUpper(strings.TrimSpace(item))
		if item != "" && (allDigits(item) || len(item) >= len("NO_B") && strings.HasPrefix("NO_BACKSLASH_ESCAPES", item)) {
			return true
		}
	}
	return false
}

func valueProblemOf(path, name, v string) ErrorList {
	switch {
	case isSQLMode(name) && setsNoBackslashEscapes(v):
		return ErrorList{forbiddenErr(path, v, "NO_BACKSLASH_ESCAPES (or a number, which may include it) would break how Mysos quotes passwords in SQL; give sql_mode as names, without it")}
	case strings.Contains(name, "character_set") || strings.Contains(name, "collation"):
		lower := strings.ToLower(strings.TrimSpace(v))
		for _, cs := range unsafeCharsets {
			if strings.HasPrefix(lower, cs) {
				return ErrorList{forbiddenErr(path, v, fmt.Sprintf(
					"%s is a multi-byte character set in which a backslash byte can end a character, which defeats the quoting of SQL strings; use utf8mb4", cs))}
			}
		}
	}
	return nil
}

func normalizeOption(k string) string { return strings.ToLower(strings.ReplaceAll(k, "-", "_")) }

// optionNames is every option name k may set once mysqld has stripped
// prefixes, k's own name first.
func optionNames(k string) []string {
	names := []string{normalizeOption(k)}
	for i := 0; i < len(names); i++ {
		for _, p := range optionPrefixes {
			if rest, ok := strings.CutPrefix(names[i], p); ok && rest != "" && !slices.Contains(names, rest) {
				names = append(names, rest)
			}
		}
	}
	return names
}

// optionProblem says why option k may not be set, or "".
func optionProblem(k string) string {
	names := optionNames(k)
	for _, n := range names {
		if msg := refusedOption(n); msg != "" {
			return msg
		}
	}
	for _, n := range names {
		if realOptions[n] {
			continue
		}
		if full := abbreviated(n); full != "" {
			return fmt.Sprintf("%q reads as an abbreviation of %s (MariaDB accepts any unambiguous prefix of an option name): %s; "+
				"write the option's full name", k, full, refusedOption(full))
		}
	}
	return ""
}

// refusedOption says why the option called name (normalised, without
// prefixes) may not be set, or "".
func refusedOption(name string) string {
	if slices.Contains(tlsOptions, name) && name != "ssl" {
		// They name files on the agent (another cluster's key among them).
		return fmt.Sprintf("%s names a file on the agent; Mysos sets it itself from the certificates it issues: set spec.tls.enabled: true", name)
	}
	if strings.HasPrefix(name, "ssl_") {
		return "" // ciphers and the like
	}
	if name == secureTransportOption {
		return "set spec.tls.required: true instead (with spec.tls.enabled), so that Mysos connects over TLS too"
	}
	if managedOptions[name] {
		return fmt.Sprintf("Mysos sets %s itself", name)
	}
	for _, p := range managedPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Sprintf("Mysos sets %s itself", name)
		}
	}
	if why, ok := unsafeOptions[name]; ok {
		return fmt.Sprintf(why, name)
	}
	for p, why := range unsafePrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Sprintf(why, name)
		}
	}
	for s, why := range unsafeSuffixes {
		if strings.HasSuffix(name, s) {
			return fmt.Sprintf(why, name)
		}
	}
	return ""
}

// abbreviated returns the refused option name is a strict prefix of, the
// first in sorted order, or "".
func abbreviated(name string) string {
	var full []string
	for n := range managedOptions {
		if strings.HasPrefix(n, name) && n != name {
			full = append(full, n)
		}
	}
	for n := range unsafeOptions {
		if strings.HasPrefix(n, name) && n != name {
			full = append(full, n)
		}
	}
	for _, p := range append(slices.Clone(managedPrefixes), "wsrep_", "replicate_") {
		if strings.HasPrefix(p, name) && p != name {
			full = append(full, strings.TrimSuffix(p, "_")+"_*")
		}
	}
	if len(full) == 0 {
		return ""
	}
	slices.Sort(full)
	return full[0]
}
