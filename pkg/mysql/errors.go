package mysql

import (
	"errors"
	"slices"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"
)

// Server error numbers Server handles.
const (
	errParse        = 1064 // ER_PARSE_ERROR: "... near '<statement text>'"
	errSyntax       = 1149 // ER_SYNTAX_ERROR
	errNoSuchThread = 1094 // ER_NO_SUCH_THREAD: KILL of a connection that just ended
	errNotReplica   = 1200 // ER_BAD_SLAVE: no source configured
)

const redacted = "<redacted>"

// redact removes secrets from err. The server's parse errors quote the
// statement around the error, possibly a cut-off piece of a password that no
// substitution would find, so for them the whole message is withheld. Other
// server errors keep their number and state (errors.As still finds a
// *gomysql.MySQLError) with each secret, raw or escaped as it was sent,
// replaced. Any other error that mentions a secret is flattened to its
// scrubbed text.
func redact(err error, secrets []string) error {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	if err == nil || len(secrets) == 0 {
		return err
	}
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		clean := *me
		if me.Number == errParse || me.Number == errSyntax {
			clean.Message = "syntax error (message withheld: the statement holds a password)"
		} else {
			clean.Message = scrub(me.Message, secrets)
		}
		return &clean
	}
	if msg := err.Error(); scrub(msg, secrets) != msg {
		return errors.New(scrub(msg, secrets))
	}
	return err
}

// scrub replaces every secret in msg, in the escaped form first since it is
// the longer one and contains the raw form's pieces.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, escapeString(s), redacted)
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	return msg
}

// isServerError reports whether err is the server error number n.
func isServerError(err error, n uint16) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == n
}

// stmtKind names a statement in an error message without its arguments: the
// text before the first literal or assignment ("CHANGE MASTER TO
// MASTER_HOST", "SET GLOBAL read_only"). Passwords are always in literals,
// so they never appear in it.
func stmtKind(stmt string) string {
	kind := stmt
	if i := strings.IndexAny(stmt, "='(\""); i >= 0 {
		kind = stmt[:i]
	}
	kind = strings.TrimSpace(kind)
	if len(kind) > 60 {
		kind = kind[:60] + "..."
	}
	return kind
}
