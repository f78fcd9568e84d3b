package mysql

import (
	"fmt"
	"regexp"
	"strings"
)

// User is an account Mysos creates on every server.
type User struct {
	Name, Host, Password string   // an empty Host is "%"
	Privileges           []string // e.g. ALL, SELECT, REPLICATION SLAVE
	On                   string   // "*.*" (the default), "db.*" or "db.table"
	WithGrantOption      bool
}

// privilegeRE: privileges are keywords (one or more words), never quoted,
// so anything else could smuggle SQL into a GRANT.
var privilegeRE = regexp.MustCompile(`^[A-Z]+( [A-Z]+)*$`)

// Validate reports what BootstrapSQL would refuse in u. The message names
// the account but never the password.
func (u User) Validate() error {
	_, err := u.grant()
	return err
}

// grant is u's GRANT statement, "" when u has no privileges.
func (u User) grant() (string, error) {
	acct := quoteAccount(u.Name, u.Host)
	if u.Name == "" {
		return "", fmt.Errorf("user @%s: empty name", quoteString(u.Host))
	}
	on, err := quoteObject(u.On)
	if err != nil {
		return "", fmt.Errorf("user %s: %v", acct, err)
	}
	privs := make([]string, 0, len(u.Privileges))
	for _, p := range u.Privileges {
		p = strings.Join(strings.Fields(strings.ToUpper(p)), " ")
		if !privilegeRE.MatchString(p) {
			return "", fmt.Errorf("user %s: privilege %q is not a privilege name", acct, p)
		}
		privs = append(privs, p)
	}
	if len(privs) == 0 {
		if u.WithGrantOption {
			return "", fmt.Errorf("user %s: WITH GRANT OPTION without privileges", acct)
		}
		return "", nil
	}
	stmt := "GRANT " + strings.Join(privs, ", ") + " ON " + on + " TO " + acct
	if u.WithGrantOption {
		stmt += " WITH GRANT OPTION"
	}
	return stmt, nil
}

// accountStatements makes users exist with exactly their password and
// privileges, whatever state the server is in: CREATE ... IF NOT EXISTS for
// a new server, ALTER USER so that a changed password takes effect on the
// next start (rotation), and REVOKE before GRANT so that privileges taken
// out of the spec go away. An account may appear in several Users (one per
// privilege level); its first entry gives the password and the later ones
// must not disagree.
//
// Invalid users are left out; their errors are returned alongside.
func accountStatements(users []User) (stmts []string, errs []error) {
	type account struct {
		password string
		grants   []string
	}
	var order []string
	accounts := map[string]*account{}
	for _, u := range users {
		g, err := u.grant()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		acct := quoteAccount(u.Name, u.Host)
		a, seen := accounts[acct]
		if !seen {
			a = &account{password: u.Password}
			accounts[acct] = a
			order = append(order, acct)
		} else if a.password != u.Password {
			errs = append(errs, fmt.Errorf("user %s: listed twice with different passwords", acct))
			continue
		}
		if g != "" {
			a.grants = append(a.grants, g)
		}
	}
	for _, acct := range order {
		a := accounts[acct]
		pw := quoteString(a.password)
		stmts = append(stmts,
			"CREATE USER IF NOT EXISTS "+acct+" IDENTIFIED BY "+pw,
			"ALTER USER "+acct+" IDENTIFIED BY "+pw,
			"REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+acct)
		stmts = append(stmts, a.grants...)
	}
	return stmts, errs
}

// bootstrapStatements is the init file's content as statements. The first
// one keeps them out of the binary log: the same accounts are created on
// every server, so a replica must not receive them from its source, and
// under gtid_strict_mode local GTIDs would make every server look errant.
//
// A server stops reading its init file at the first failing statement and
// starts anyway (MariaDB 10.11 logs "ERROR: ..." and goes on), so invalid
// users are reported by a SIGNAL at the very end: the valid accounts,
// Mysos' admin among them, exist, and the error log says what was wrong.
func bootstrapStatements(users []User) []string {
	stmts, errs := accountStatements(users)
	stmts = append([]string{"SET sql_log_bin=0"}, stmts...)
	if len(errs) > 0 {
		stmts = append(stmts, signal(fmt.Sprintf("mysos: %d invalid user(s): %v", len(errs), errs[0])))
	}
	return stmts
}

// signal raises an error carrying msg, truncated to the 128 characters
// MESSAGE_TEXT holds.
func signal(msg string) string {
	if r := []rune(msg); len(r) > 128 {
		msg = string(r[:125]) + "..."
	}
	return "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT=" + quoteString(msg)
}

// joinScript writes statements one per line, each ended by a semicolon, as
// an init file wants them. Literals never hold a raw newline (escapeString),
// so a line is always a whole statement.
func joinScript(stmts []string) string {
	return strings.Join(stmts, ";\n") + ";\n"
}

// splitScript undoes joinScript.
func splitScript(script string) []string {
	var out []string
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSuffix(strings.TrimSpace(line), ";")
		if line != "" && !strings.HasPrefix(line, "--") {
			out = append(out, line)
		}
	}
	return out
}
