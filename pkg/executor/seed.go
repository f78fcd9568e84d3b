package executor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/mysos-project/mysos/pkg/mysql"
)

// seedGrace is how long the temporary server has to shut down after the
// seed.
const seedGrace = time.Minute

// systemDatabases are the server's own; every member creates them itself.
var systemDatabases = []string{"information_schema", "mysql", "performance_schema", "sys"}

// dumpPosition is the GTID position mariadb-dump writes at the end of a
// dump taken with --gtid --master-data=2.
var dumpPosition = regexp.MustCompile(`^-- SET GLOBAL gtid_slave_pos='([^']*)';`)

// seed fills a freshly initialised data directory (scratch, not yet in
// place) from the donor: a consistent dump of the donor's databases, taken
// in one transaction with its GTID position, loaded without writing the
// local binary log (the rows are the donor's transactions, not new ones),
// and that position set as where replication resumes. A new replica thus
// starts from a copy, never from a replay of the binary logs since the
// beginning. Any failure leaves scratch unrenamed, so the next launch
// seeds again.
func (m *mysqld) seed(ctx context.Context, scratch string) error {
	d := m.spec.Seed
	srv, err := m.launchServer("--datadir="+scratch, "--skip-networking", "--skip-slave-start", "--init-file="+m.init)
	if err != nil {
		return err
	}
	defer srv.stop(seedGrace)
	if err := m.waitReady(ctx, srv.done, func() error { return srv.err }); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	admin := m.spec.AdminUser()
	donor, err := mysql.Open(mysql.Endpoint{Host: d.Host, Port: d.Port, User: admin.Name, Password: admin.Password}, m.flavor)
	if err != nil {
		return err
	}
	defer donor.Close()
	// The position is read before the databases are listed: with no
	// database to copy, everything after it replicates.
	set, err := donor.GTIDExecuted(ctx)
	if err != nil {
		return fmt.Errorf("seed: the donor's GTID position: %w", err)
	}
	dbs, err := userDatabases(ctx, donor)
	if err != nil {
		return fmt.Errorf("seed: list the donor's databases: %w", err)
	}
	if len(dbs) > 0 {
		pos, err := m.copyFrom(ctx, d.Host, d.Port, dbs)
		if err != nil {
			return fmt.Errorf("seed from %s:%d: %w", d.Host, d.Port, err)
		}
		if set, err = m.flavor.ParseGTIDSet(pos); err != nil {
			return fmt.Errorf("seed: the dump's GTID position %q: %w", pos, err)
		}
	}
	local, err := mysql.Open(mysql.Endpoint{Socket: m.cfg.SocketPath(), User: admin.Name, Password: admin.Password}, m.flavor)
	if err != nil {
		return err
	}
	defer local.Close()
	if err := local.SetGTIDPosition(ctx, set); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return srv.stop(seedGrace)
}

func userDatabases(ctx context.Context, donor *mysql.Server) ([]string, error) {
	all, err := donor.Databases(ctx)
	return slices.DeleteFunc(all, func(db string) bool { return slices.Contains(systemDatabases, db) }), err
}

// copyFrom pipes mariadb-dump from the donor into the local server and
// returns the GTID position the dump is consistent with. Passwords go in a
// defaults file readable by this user alone, never on a command line.
func (m *mysqld) copyFrom(ctx context.Context, host string, port int, dbs []string) (string, error) {
	admin := m.spec.AdminUser()
	creds := filepath.Join(m.cfg.RunDir, "client.cnf")
	if err := os.WriteFile(creds, []byte(fmt.Sprintf("[client]\nuser=%s\npassword=\"%s\"\n", admin.Name, optionValue(admin.Password))), 0o600); err != nil {
		return "", err
	}
	defer os.Remove(creds)
	dumpBin, err := findBinary("mariadb-dump", "mysqldump")
	if err != nil {
		return "", err
	}
	loadBin, err := findBinary("mariadb", "mysql")
	if err != nil {
		return "", err
	}
	args := []string{"--defaults-extra-file=" + creds, "-h", host, "-P", strconv.Itoa(port),
		"--single-transaction", "--gtid", "--master-data=2", "--routines", "--events", "--triggers", "--databases"}
	dump := exec.CommandContext(ctx, dumpBin, append(args, dbs...)...)
	load := exec.CommandContext(ctx, loadBin, "--defaults-extra-file="+creds, "-S", m.cfg.SocketPath(),
		"--binary-mode", "--init-command=SET sql_log_bin=0")
	var dumpErr, loadErr bytes.Buffer
	dump.Stderr, load.Stderr = &dumpErr, &loadErr
	out, err := dump.StdoutPipe()
	if err != nil {
		return "", err
	}
	in, err := load.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := load.Start(); err != nil {
		return "", err
	}
	if err := dump.Start(); err != nil {
		in.Close()
		_ = load.Wait()
		return "", err
	}
	pos, copyErr := forwardWatching(out, in)
	in.Close()
	if err := dump.Wait(); err != nil {
		_ = load.Wait()
		return "", fmt.Errorf("mariadb-dump: %v: %s", err, tail(dumpErr.String(), 5))
	}
	if err := load.Wait(); err != nil {
		return "", fmt.Errorf("loading the dump: %v: %s", err, tail(loadErr.String(), 5))
	}
	if copyErr != nil {
		return "", copyErr
	}
	if pos == "" {
		return "", fmt.Errorf("the dump carries no GTID position")
	}
	return pos, nil
}

// forwardWatching copies the dump line by line and picks up its position.
func forwardWatching(r io.Reader, w io.Writer) (string, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var pos string
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if m := dumpPosition.FindSubmatch(line); m != nil {
				pos = string(m[1])
			}
			if _, werr := w.Write(line); werr != nil {
				return pos, werr
			}
		}
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
	}
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
