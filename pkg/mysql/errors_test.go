package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"
)

func TestRedact(t *testing.T) {
	const pw = `pa'ss\word`
	secrets := []string{"", pw}
	for _, tc := range []struct {
		name string
		in   error
		want string
		num  uint16
	}{
		{"server message quoting the escaped password",
			&gomysql.MySQLError{Number: 1231, Message: `Variable 'x' can't be set to the value of 'pa\'ss\\word'`},
			`Error 1231: Variable 'x' can't be set to the value of '<redacted>'`, 1231},
		{"server message quoting the raw password",
			&gomysql.MySQLError{Number: 1045, Message: "denied for pa'ss\\word and pa'ss\\word"},
			"Error 1045: denied for <redacted> and <redacted>", 1045},
		{"syntax error, possibly with a cut-off password",
			&gomysql.MySQLError{Number: 1064, Message: "You have an error near 'MASTER_PASSWORD='pa\\'ss"},
			"Error 1064: syntax error (message withheld: the statement holds a password)", 1064},
		{"wrapped server error", fmt.Errorf("ctx: %w", &gomysql.MySQLError{Number: 1149, Message: pw}),
			"Error 1149: syntax error (message withheld: the statement holds a password)", 1149},
		{"other error holding the password", errors.New("dial: " + pw),
			"dial: <redacted>", 0},
	} {
		got := redact(tc.in, secrets)
		if got.Error() != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		var me *gomysql.MySQLError
		if tc.num != 0 && (!errors.As(got, &me) || me.Number != tc.num) {
			t.Errorf("%s: %v lost its server error number", tc.name, got)
		}
	}
	// Errors without secrets stay as they are, context errors included.
	in := fmt.Errorf("query: %w", context.DeadlineExceeded)
	if got := redact(in, secrets); got != in || !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("redact changed %v into %v", in, got)
	}
	if redact(nil, secrets) != nil {
		t.Error("redact(nil) != nil")
	}
	// No secrets: even a syntax error keeps its message.
	syntax := &gomysql.MySQLError{Number: 1064, Message: "near 'x'"}
	if got := redact(syntax, []string{""}); got != error(syntax) {
		t.Errorf("redact without secrets changed %v into %v", syntax, got)
	}
}

func TestStmtKind(t *testing.T) {
	for in, want := range map[string]string{
		"CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='x'": "CHANGE MASTER TO MASTER_HOST",
		"CREATE USER IF NOT EXISTS 'a'@'b' IDENTIFIED BY 'pw'":  "CREATE USER IF NOT EXISTS",
		"SET GLOBAL read_only=ON":                               "SET GLOBAL read_only",
		"SELECT MASTER_GTID_WAIT('0-1-1', 1.000)":               "SELECT MASTER_GTID_WAIT",
		"STOP SLAVE": "STOP SLAVE",
	} {
		if got := stmtKind(in); got != want {
			t.Errorf("stmtKind(%q) = %q, want %q", in, got, want)
		}
	}
	if got := stmtKind(strings.Repeat("A", 100)); len(got) != 63 {
		t.Errorf("a long statement's kind has %d bytes", len(got))
	}
}
