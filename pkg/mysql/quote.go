package mysql

import (
	"fmt"
	"strings"
)

// escapeString escapes s for use inside a single-quoted SQL string literal
// the way mysql_real_escape_string does. Besides the quote and the
// backslash it escapes NUL, CR, LF and Ctrl-Z, so that a literal never spans
// lines (an init file is read statement by statement) and never holds bytes
// a terminal or a log would mangle.
func escapeString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		case 0x1a:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// quoteString is s as a single-quoted SQL string literal.
func quoteString(s string) string { return "'" + escapeString(s) + "'" }

// quoteIdent is s as a backquoted identifier; a backquote inside is doubled.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteAccount is 'name'@'host'; an empty host means any host ("%").
func quoteAccount(name, host string) string {
	if host == "" {
		host = "%"
	}
	return quoteString(name) + "@" + quoteString(host)
}

// quoteObject quotes a privilege level: "*.*", "db.*", "db.table" or "*"
// (a bare "*" means the default database, never wanted here, so it is taken
// as "*.*"). Names may already be backquoted, e.g. "`my.db`.*". An empty
// level is "*.*".
func quoteObject(on string) (string, error) {
	on = strings.TrimSpace(on)
	if on == "" || on == "*" || on == "*.*" {
		return "*.*", nil
	}
	db, rest, err := splitName(on)
	if err != nil {
		return "", fmt.Errorf("privilege level %q: %v", on, err)
	}
	if !strings.HasPrefix(rest, ".") {
		return "", fmt.Errorf("privilege level %q: want *.*, db.* or db.table", on)
	}
	table, tail, err := splitName(rest[1:])
	if err != nil || tail != "" || db == "*" {
		return "", fmt.Errorf("privilege level %q: want *.*, db.* or db.table", on)
	}
	if table == "*" {
		// At database level GRANT reads the name as a LIKE pattern: an
		// unescaped '_' in "db_1" would also grant "dbX1".
		return quoteIdent(escapeWildcards(db)) + ".*", nil
	}
	return quoteIdent(db) + "." + quoteIdent(table), nil
}

// escapeWildcards makes the LIKE wildcards of a database name in a GRANT
// literal.
func escapeWildcards(db string) string {
	return strings.NewReplacer(`\`, `\\`, "_", `\_`, "%", `\%`).Replace(db)
}

// splitName takes one name off the front of s: "*", a backquoted name (in
// which a doubled backquote stands for one) or a bare name up to the next
// dot.
func splitName(s string) (name, rest string, err error) {
	switch {
	case s == "":
		return "", "", fmt.Errorf("empty name")
	case s[0] == '*':
		return "*", s[1:], nil
	case s[0] != '`':
		name, rest, _ = strings.Cut(s, ".")
		if name == "" {
			return "", "", fmt.Errorf("empty name")
		}
		if rest != "" || strings.HasSuffix(s, ".") {
			rest = "." + rest
		}
		return name, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", fmt.Errorf("empty name")
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", fmt.Errorf("unterminated backquote")
}
