package mysql

import (
	"slices"
	"strings"
	"testing"
)

func TestEscapeString(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"plain":            "plain",
		"it's":             `it\'s`,
		`back\slash`:       `back\\slash`,
		`\'`:               `\\\'`,
		"nul\x00byte":      `nul\0byte`,
		"two\nlines\r":     `two\nlines\r`,
		`say "hi"`:         `say \"hi\"`,
		"ctrl-z\x1a":       `ctrl-z\Z`,
		"ünïcødé ✓":        "ünïcødé ✓",
		"'; DROP TABLE x;": `\'; DROP TABLE x;`,
	} {
		if got := escapeString(in); got != want {
			t.Errorf("escapeString(%q) = %q, want %q", in, got, want)
		}
	}
	if got := quoteAccount("o'neil", ""); got != `'o\'neil'@'%'` {
		t.Errorf("quoteAccount = %s", got)
	}
}

func TestQuoteObject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "*.*"},
		{"*", "*.*"},
		{"*.*", "*.*"},
		{"app.*", "`app`.*"},
		{"app.t", "`app`.`t`"},
		{"`my.db`.*", "`my.db`.*"},
		{"`we``ird`.`t`", "`we``ird`.`t`"},
		{"a`b.*", "`a``b`.*"},
		{"db_1.*", "`db\\_1`.*"},
		{"50%.*", "`50\\%`.*"},
		{"db_1.t_1", "`db_1`.`t_1`"},
	} {
		got, err := quoteObject(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("quoteObject(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"app", "app.", ".*", "*.t", "app.*.x", "`app.*", "``.*"} {
		if got, err := quoteObject(in); err == nil {
			t.Errorf("quoteObject(%q) = %q, want an error", in, got)
		}
	}
}

func TestBootstrapSQL(t *testing.T) {
	users := []User{
		{Name: "mysos_admin", Host: "127.0.0.1", Password: nastyPassword, Privileges: []string{"ALL PRIVILEGES"}, WithGrantOption: true},
		{Name: "app", Password: "a'b", Privileges: []string{"select", " insert "}, On: "app.*"},
		{Name: "app", Password: "a'b", Privileges: []string{"SELECT"}, On: "audit.log"},
		{Name: "monitor", Host: "localhost", Password: "m"},
	}
	want := strings.Join([]string{
		"SET sql_log_bin=0;",
		`CREATE USER IF NOT EXISTS 'mysos_admin'@'127.0.0.1' IDENTIFIED BY 'it\'s a \\ \"pw\"\0\n';`,
		`ALTER USER 'mysos_admin'@'127.0.0.1' IDENTIFIED BY 'it\'s a \\ \"pw\"\0\n';`,
		`REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'mysos_admin'@'127.0.0.1';`,
		`GRANT ALL PRIVILEGES ON *.* TO 'mysos_admin'@'127.0.0.1' WITH GRANT OPTION;`,
		`CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'a\'b';`,
		`ALTER USER 'app'@'%' IDENTIFIED BY 'a\'b';`,
		`REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'app'@'%';`,
		"GRANT SELECT, INSERT ON `app`.* TO 'app'@'%';",
		"GRANT SELECT ON `audit`.`log` TO 'app'@'%';",
		`CREATE USER IF NOT EXISTS 'monitor'@'localhost' IDENTIFIED BY 'm';`,
		`ALTER USER 'monitor'@'localhost' IDENTIFIED BY 'm';`,
		`REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'monitor'@'localhost';`,
	}, "\n") + "\n"
	for _, f := range []Flavor{MariaDB, MySQL8} {
		if got := f.BootstrapSQL(users); got != want {
			t.Errorf("%s BootstrapSQL:\n%s\nwant:\n%s", f.Name(), got, want)
		}
	}
	// One statement per line, whatever the passwords hold.
	if got := splitScript(MariaDB.BootstrapSQL(users)); len(got) != 13 {
		t.Errorf("splitScript found %d statements, want 13", len(got))
	}
}

func TestBootstrapSQLInvalidUsers(t *testing.T) {
	users := []User{
		{Name: "ok", Password: "pw1", Privileges: []string{"SELECT"}},
		{Name: "evil", Password: "secret-evil", Privileges: []string{"SELECT ON *.* TO x; --"}},
		{Name: "", Password: "secret-anon"},
		{Name: "dbl", Password: "secret-a"},
		{Name: "dbl", Password: "secret-b"},
		{Name: "lvl", Password: "secret-lvl", Privileges: []string{"SELECT"}, On: "app"},
		{Name: "opt", Password: "secret-opt", WithGrantOption: true},
	}
	stmts := splitScript(MariaDB.BootstrapSQL(users))
	last := stmts[len(stmts)-1]
	if !strings.HasPrefix(last, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT='mysos: 5 invalid user(s): ") {
		t.Errorf("last statement %q, want a SIGNAL naming the invalid users", last)
	}
	for _, s := range stmts {
		if strings.Contains(s, "secret") && !strings.Contains(s, "secret-a") {
			t.Errorf("an invalid user made it into the script: %q", s)
		}
		if strings.HasPrefix(s, "SIGNAL") && strings.Contains(s, "secret") {
			t.Errorf("the SIGNAL reveals a password: %q", s)
		}
	}
	if !slices.Contains(stmts, "GRANT SELECT ON *.* TO 'ok'@'%'") {
		t.Errorf("the valid user is missing: %q", stmts)
	}
	for _, u := range users[1:] {
		if u.Name != "dbl" && u.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", u)
		}
	}
	long := signal(strings.Repeat("é", 200))
	if n := len([]rune(long)); n > len([]rune("SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT=''"))+128 {
		t.Errorf("signal message not cut to 128 characters: %d", n)
	}
}

func TestSplitScript(t *testing.T) {
	stmts := []string{"SET sql_log_bin=0", "SELECT 'a;b'", "SELECT 2"}
	got := splitScript("-- comment\n" + joinScript(stmts) + "\n\n")
	if !slices.Equal(got, stmts) {
		t.Errorf("splitScript = %q, want %q", got, stmts)
	}
}
