package executor

// This file runs the client tools that seeding, backups and restores share:
// mariadb-dump, which takes a consistent logical dump of a member, and the
// mariadb client, which loads one into the local server.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	"github.com/mysos-project/mysos/pkg/mysql"
)

// dumpPosition is the GTID position mariadb-dump writes at the end of a
// dump taken with --gtid --master-data=2.
var dumpPosition = regexp.MustCompile(`^-- SET GLOBAL gtid_slave_pos='([^']*)';`)

// writeClientOptions writes an option file with an account for the client
// tools into dir, readable by this user alone: passwords never go on a
// command line or in the environment, where other users could read them.
// With caFile (a CA bundle, see writeCAFile) the tools connect over TLS
// only and verify the server's certificate against it and the host they
// were given. The caller removes the file.
func writeClientOptions(dir, user, password, caFile string) (string, error) {
	opts := fmt.Sprintf("[client]\nuser=%s\npassword=\"%s\"\n", user, optionValue(password))
	if caFile != "" {
		opts += fmt.Sprintf("ssl-ca=\"%s\"\nssl-verify-server-cert\n", optionValue(caFile))
	}
	return writePrivateFile(dir, "client-*.cnf", opts)
}

// writeCAFile writes a CA bundle (PEM) the client tools verify a server
// with into dir and returns its path; "" for no CA. The caller removes it.
func writeCAFile(dir, caPEM string) (string, error) {
	if caPEM == "" {
		return "", nil
	}
	return writePrivateFile(dir, "ca-*.pem", caPEM)
}

// ensurePrivateDir makes dir (mode 0700), or accepts it if it already is a
// directory of this user that no one else may enter. The run directory's
// name is predictable: a directory, or a symbolic link, that someone else
// put there first could swap the files Mysos writes into it before they
// are read, so it is refused.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o077 != 0 {
		owner := -1
		if ok {
			owner = int(st.Uid)
		}
		return fmt.Errorf("%s exists but is not a private directory of this user (%v, owner uid %d): someone else made it; remove it", dir, fi.Mode(), owner)
	}
	return nil
}

// writePrivateFile writes content to a new file in dir (created 0700 if
// missing) that only this user can read, and returns its path.
func writePrivateFile(dir, pattern, content string) (string, error) {
	if err := ensurePrivateDir(dir); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, pattern) // mode 0600
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// dumpDatabases streams a consistent dump of dbs on host:port to w, taken
// in one transaction, and returns the GTID position written in it ("" if
// the server's binary log was empty). opts is the option file with the
// account. An error writing to w is returned as is.
func dumpDatabases(ctx context.Context, opts, host string, port int, dbs []string, w io.Writer) (string, error) {
	bin, err := findBinary("mariadb-dump", "mysqldump")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := []string{"--defaults-extra-file=" + opts, "-h", host, "-P", strconv.Itoa(port),
		"--single-transaction", "--gtid", "--master-data=2", "--routines", "--events", "--triggers", "--databases"}
	cmd := exec.CommandContext(ctx, bin, append(args, dbs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pos, found, copyErr := forwardWatching(out, w)
	if copyErr != nil {
		cancel() // nobody reads the dump any more: it would block
	}
	waitErr := cmd.Wait()
	switch {
	case copyErr != nil:
		return "", copyErr
	case waitErr != nil:
		return "", fmt.Errorf("%s: %v: %s", filepath.Base(bin), waitErr, tail(stderr.String(), 5))
	case !found:
		return "", errors.New("the dump carries no GTID position")
	}
	return pos, nil
}

// forwardWatching copies the dump line by line and picks up its position.
func forwardWatching(r io.Reader, w io.Writer) (pos string, found bool, err error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if m := dumpPosition.FindSubmatch(line); m != nil {
				pos, found = string(m[1]), true
			}
			if _, werr := w.Write(line); werr != nil {
				return pos, found, werr
			}
		}
		if err == io.EOF {
			return pos, found, nil
		}
		if err != nil {
			return pos, found, err
		}
	}
}

// dumpSnapshot is the GTID position of a dump's data: the position the dump
// carries, joined with the server's executed set read before it (before).
// The dump's position comes from the binary log, which is empty on a server
// whose position was declared with SetGTIDPosition (a restored or seeded
// member) and that has logged nothing since: its data then holds what was
// declared, which before includes.
func dumpSnapshot(f mysql.Flavor, before mysql.GTIDSet, pos string) (mysql.GTIDSet, error) {
	set, err := f.ParseGTIDSet(pos)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("the dump's GTID position %q: %w", pos, err)
	}
	return before.Union(set), nil
}

// load feeds r to the mariadb client on the local server's socket, without
// writing the local binary log: the rows are the source's transactions, not
// new ones.
func (m *mysqld) load(ctx context.Context, opts string, r io.Reader) error {
	bin, err := findBinary("mariadb", "mysql")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--defaults-extra-file="+opts, "-S", m.cfg.SocketPath(),
		"--binary-mode", "--init-command=SET sql_log_bin=0")
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = r, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("loading the dump: %v: %s", err, tail(stderr.String(), 5))
	}
	return nil
}

// optionValue escapes a value for a double-quoted option file value.
func optionValue(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
