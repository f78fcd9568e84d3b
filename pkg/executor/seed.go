package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/mysos-project/mysos/pkg/mysql"
)

// seedGrace is how long the temporary server has to shut down after the
// seed.
const seedGrace = time.Minute

// systemDatabases are the server's own; every member creates them itself.
var systemDatabases = []string{"information_schema", "mysql", "performance_schema", "sys"}

// fill fills a freshly initialised data directory (scratch, not yet in
// place) with data that copy loads into a temporary server, which listens
// on its socket only; copy returns the GTID position the data holds, which
// is then set as where replication resumes. A new member thus starts from
// a copy, never from a replay of the binary logs since the beginning. Any
// failure leaves scratch unrenamed, so the next launch starts over.
func (m *mysqld) fill(ctx context.Context, scratch, what string, copy func(context.Context) (mysql.GTIDSet, error)) error {
	srv, err := m.launchServer("--datadir="+scratch, "--skip-networking", "--skip-slave-start", "--init-file="+m.init)
	if err != nil {
		return err
	}
	defer srv.stop(seedGrace)
	if err := m.waitReady(ctx, srv.done, func() error { return srv.err }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	set, err := copy(ctx)
	if err != nil {
		return err
	}
	admin := m.spec.AdminUser()
	local, err := mysql.Open(mysql.Endpoint{Socket: m.cfg.SocketPath(), User: admin.Name, Password: admin.Password}, m.flavor)
	if err != nil {
		return err
	}
	defer local.Close()
	if err := local.SetGTIDPosition(ctx, set); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return srv.stop(seedGrace)
}

// seed copies the donor's databases: a consistent dump taken in one
// transaction with its GTID position, loaded without writing the local
// binary log (the rows are the donor's transactions, not new ones).
func (m *mysqld) seed(ctx context.Context) (mysql.GTIDSet, error) {
	d := m.spec.Seed
	admin := m.spec.AdminUser()
	donor, err := mysql.Open(mysql.Endpoint{Host: d.Host, Port: d.Port, User: admin.Name, Password: admin.Password, CA: []byte(d.CA)}, m.flavor)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	defer donor.Close()
	// The position is read before the databases are listed: with no
	// database to copy, everything after it replicates.
	set, err := donor.GTIDExecuted(ctx)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("seed: the donor's GTID position: %w", err)
	}
	dbs, err := userDatabases(ctx, donor)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("seed: list the donor's databases: %w", err)
	}
	if len(dbs) == 0 {
		return set, nil
	}
	pos, err := m.copyFrom(ctx, d.Host, d.Port, dbs)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("seed from %s:%d: %w", d.Host, d.Port, err)
	}
	if set, err = dumpSnapshot(m.flavor, set, pos); err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("seed: %w", err)
	}
	return set, nil
}

func userDatabases(ctx context.Context, donor *mysql.Server) ([]string, error) {
	all, err := donor.Databases(ctx)
	return slices.DeleteFunc(all, func(db string) bool { return slices.Contains(systemDatabases, db) }), err
}

// errLoadEnded stops a dump whose loader has stopped reading.
var errLoadEnded = errors.New("the load ended")

// copyFrom pipes a dump of the donor into the local server and returns the
// GTID position the dump carries. The dump reaches the donor over TLS when
// it serves TLS; the load goes to the local socket.
func (m *mysqld) copyFrom(ctx context.Context, host string, port int, dbs []string) (string, error) {
	admin := m.spec.AdminUser()
	opts, err := writeClientOptions(m.cfg.RunDir, admin.Name, admin.Password, "")
	if err != nil {
		return "", err
	}
	defer os.Remove(opts)
	ca, err := writeCAFile(m.cfg.RunDir, m.spec.Seed.CA)
	if err != nil {
		return "", err
	}
	if ca != "" {
		defer os.Remove(ca)
	}
	dumpOpts, err := writeClientOptions(m.cfg.RunDir, admin.Name, admin.Password, ca)
	if err != nil {
		return "", err
	}
	defer os.Remove(dumpOpts)
	var pos string
	err = m.loadStream(ctx, opts, func(w io.Writer) error {
		var err error
		pos, err = dumpDatabases(ctx, dumpOpts, host, port, dbs, w)
		return err
	})
	return pos, err
}

// loadStream loads what produce writes into the local server (see load).
// A failure of produce is the cause of whatever the load then did, so it
// is the one returned; produce's writes fail once the load has ended.
func (m *mysqld) loadStream(ctx context.Context, opts string, produce func(io.Writer) error) error {
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		produced <- err
	}()
	loadErr := m.load(ctx, opts, pr)
	pr.CloseWithError(errLoadEnded)
	if err := <-produced; err != nil && (!errors.Is(err, errLoadEnded) || loadErr == nil) {
		return err
	}
	return loadErr
}
