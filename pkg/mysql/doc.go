// Package mysql is one interface for everything Mysos says to a MySQL or
// MariaDB server: the SQL dialect of each flavour (Flavor), GTID sets in
// both syntaxes (GTIDSet), and a live connection to one server (Server)
// that reads its replication status and changes its role.
//
// # Flavours
//
// MariaDB 10.11 and MySQL 8 differ in almost every replication statement
// (CHANGE MASTER TO vs CHANGE REPLICATION SOURCE TO, domain-server-seq GTID
// positions vs uuid:interval GTID sets, built-in semi-sync vs plugins). A
// Flavor turns an intent ("replicate from this source", "be read-only")
// into that flavour's statements; the statements are pure functions of
// their arguments so they are unit-tested per flavour. Server runs them.
//
// # Secrets
//
// Passwords travel in CHANGE MASTER and in account statements. A server's
// syntax errors quote the statement ("... near 'MASTER_PASSWORD=...'"), so
// Server's errors name a statement only by its leading keywords, never with
// its arguments, and every password Server knows of is scrubbed from the
// server's messages (see redact in errors.go).
//
// # Quoting
//
// String literals are escaped with backslashes (escapeString), as
// mysql_real_escape_string does. That assumes sql_mode lacks
// NO_BACKSLASH_ESCAPES, as it does by default in both flavours and in
// Mysos' my.cnf.
package mysql
