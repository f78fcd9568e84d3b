// Package mysqltest starts throwaway MariaDB servers for tests: each with
// its own data directory, port, socket and server_id, binary logging and
// GTIDs set up as Mysos runs them, and Mysos' admin and replication
// accounts created by an init file from mysql.MariaDB.BootstrapSQL.
//
// Without mariadbd a test is skipped, except in CI (CI=true), where it
// fails: see testutil.RequireBinary.
package mysqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/mysql"
)

// Account names every instance has.
const (
	AdminUser = "mysos_admin" // ALL PRIVILEGES WITH GRANT OPTION, from 127.0.0.1 and localhost
	ReplUser  = "mysos_repl"  // REPLICATION SLAVE and REPLICATION CLIENT, from 127.0.0.1
)

// How long a server may take to start and to stop. Starting takes about
// 0.2 s on an idle machine; the margin is for loaded CI machines.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

const installHint = "apt-get install -y mariadb-server"

// Options adjust the instances a test starts.
type Options struct {
	// Users are created besides the admin and replication accounts.
	Users []mysql.User
	// Config lines are appended to the [mysqld] section of my.cnf.
	Config []string
	// CA, when the Config lines give the servers TLS, is the CA (PEM) their
	// certificates chain to: Endpoint, Open and the readiness probe then
	// connect over TLS with it.
	CA []byte
}

// Instance is one running mariadbd.
type Instance struct {
	Dir        string // holds everything but the socket
	DataDir    string
	ConfigFile string
	ErrorLog   string
	Socket     string
	Port       int
	ServerID   uint32
	// AdminPassword and ReplPassword are shared by the instances of one
	// StartN, as in a Mysos cluster. They hold a quote and a backslash, so
	// every test exercises the init file's escaping.
	AdminPassword string
	ReplPassword  string

	bin  string
	init string
	ca   []byte
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
	err  error         // the process's exit; read after done
}

var lastServerID atomic.Uint32

// Start starts one instance; it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	return StartN(t, 1, opts)[0]
}

// StartN starts n instances at once (they boot in parallel, which takes
// barely longer than one); they are stopped when the test ends.
func StartN(t testing.TB, n int, opts Options) []*Instance {
	t.Helper()
	bin := serverBinary(t)
	admin, repl := password(t), password(t)
	out := make([]*Instance, n)
	for k := range out {
		out[k] = prepare(t, bin, admin, repl, opts)
	}
	for _, in := range out {
		in.launch(t)
		t.Cleanup(func() { in.Stop(t) })
	}
	for _, in := range out {
		in.waitReady(t)
	}
	return out
}

// serverBinary finds mariadbd, also in /usr/sbin, which a non-root PATH
// often lacks.
func serverBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mariadbd"); err == nil {
		return p
	}
	if p := "/usr/sbin/mariadbd"; isExecutable(p) {
		return p
	}
	return testutil.RequireBinary(t, "mariadbd", installHint)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// password is random, with a quote and a backslash in it.
func password(t testing.TB) string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return `p'w\` + hex.EncodeToString(b)
}

// prepare creates the instance's directories, data directory, my.cnf and
// init file.
func prepare(t testing.TB, bin, adminPW, replPW string, opts Options) *Instance {
	t.Helper()
	dir := t.TempDir()
	in := &Instance{
		Dir: dir, DataDir: filepath.Join(dir, "data"), ConfigFile: filepath.Join(dir, "my.cnf"),
		ErrorLog: filepath.Join(dir, "error.log"), Socket: filepath.Join(socketDir(t), "mysqld.sock"),
		Port: testutil.FreePort(t), ServerID: lastServerID.Add(1),
		AdminPassword: adminPW, ReplPassword: replPW,
		bin: bin, init: filepath.Join(dir, "init.sql"), ca: opts.CA,
	}
	writeFile(t, in.ConfigFile, in.config(opts.Config))
	users := append(in.accounts(), opts.Users...)
	writeFile(t, in.init, mysql.MariaDB.BootstrapSQL(users))
	copyTemplate(t, in.DataDir)
	return in
}

// socketDir is short: a socket path holds at most 107 bytes, and
// t.TempDir() paths grow with the test's name.
func socketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "myt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// accounts are Mysos' own accounts.
func (in *Instance) accounts() []mysql.User {
	all := []string{"ALL PRIVILEGES"}
	return []mysql.User{
		{Name: AdminUser, Host: "127.0.0.1", Password: in.AdminPassword, Privileges: all, WithGrantOption: true},
		{Name: AdminUser, Host: "localhost", Password: in.AdminPassword, Privileges: all, WithGrantOption: true},
		{Name: ReplUser, Host: "127.0.0.1", Password: in.ReplPassword,
			Privileges: []string{"REPLICATION SLAVE", "REPLICATION CLIENT"}},
	}
}

// config is the instance's my.cnf: GTID replication as Mysos runs it
// (one domain, strict mode, log_slave_updates, row format), read_only until
// promoted, and small buffers so that many instances fit in memory.
func (in *Instance) config(extra []string) string {
	lines := []string{
		"[mysqld]",
		"datadir=" + in.DataDir,
		"socket=" + in.Socket,
		"pid-file=" + filepath.Join(in.Dir, "mysqld.pid"),
		"log_error=" + in.ErrorLog,
		"tmpdir=" + in.Dir,
		// As Mysos' own my.cnf: file access only in the instance's tmpdir.
		"secure_file_priv=" + in.Dir,
		fmt.Sprintf("port=%d", in.Port),
		"bind-address=127.0.0.1",
		"skip_name_resolve=ON",
		fmt.Sprintf("server_id=%d", in.ServerID),
		"gtid_domain_id=0",
		"gtid_strict_mode=ON",
		"log_bin=" + filepath.Join(in.DataDir, "binlog"),
		"relay_log=" + filepath.Join(in.DataDir, "relay-bin"),
		"log_slave_updates=ON",
		"binlog_format=ROW",
		"read_only=ON",
		// As Mysos' own my.cnf: STOP SLAVE on a semi-sync replica waits
		// this long (default 5 s) for its source's dump thread to end.
		"rpl_semi_sync_slave_kill_conn_timeout=1",
		"report_host=127.0.0.1",
		fmt.Sprintf("report_port=%d", in.Port),
		"max_connections=50",
		"character_set_server=utf8mb4",
		"collation_server=utf8mb4_general_ci",
		// Tests need no durability against a machine crash; a killed
		// mysqld loses nothing with these.
		"innodb_flush_log_at_trx_commit=2",
		"sync_binlog=0",
	}
	lines = append(append(lines, smallBuffers...), extra...)
	return strings.Join(lines, "\n") + "\n"
}

// smallBuffers keep an idle instance near 55 MiB (about 100 with the
// defaults); the data directory template is made with the same redo log.
var smallBuffers = []string{
	"innodb_buffer_pool_size=32M",
	"innodb_log_file_size=16M",
	"innodb_log_buffer_size=2M",
	"performance_schema=OFF",
	"aria_pagecache_buffer_size=8M",
	"key_buffer_size=8M",
}

// asRoot: mariadbd and mariadb-install-db refuse to run as root unless
// told to.
func asRoot() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

// launch starts mariadbd. --defaults-file must be its first argument, or the
// machine's /etc/mysql/my.cnf is read too.
func (in *Instance) launch(t testing.TB) {
	t.Helper()
	args := append([]string{"--defaults-file=" + in.ConfigFile, "--init-file=" + in.init}, asRoot()...)
	cmd := exec.Command(in.bin, args...)
	out, err := os.OpenFile(filepath.Join(in.Dir, "mariadbd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// If the test binary dies without its cleanups, the server goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", in.bin, err)
	}
	in.cmd, in.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		in.err = cmd.Wait()
		out.Close()
		close(done)
	}(in.done)
}

// waitReady polls until the admin can log in over TCP; a server that exits
// meanwhile fails the test at once, with its error log.
func (in *Instance) waitReady(t testing.TB) {
	t.Helper()
	srv, err := mysql.Open(in.Endpoint(), mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err := srv.Ping(pctx)
		pcancel()
		if err == nil {
			return
		}
		select {
		case <-in.done:
			t.Fatalf("mariadbd (port %d) exited while starting: %v\n%s", in.Port, in.err, in.LogTail())
		case <-ctx.Done():
			t.Fatalf("mariadbd (port %d) did not accept the admin within %s: %v\n%s", in.Port, startTimeout, err, in.LogTail())
		case <-tick.C:
		}
	}
}

// LogTail is the end of the error log, for failure messages.
func (in *Instance) LogTail() string {
	b, err := os.ReadFile(in.ErrorLog)
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it; a server
// that does not stop within 30 s is killed. Stopping a stopped instance
// does nothing.
func (in *Instance) Stop(t testing.TB) {
	t.Helper()
	in.signal(t, syscall.SIGTERM)
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (in *Instance) Kill(t testing.TB) {
	t.Helper()
	in.signal(t, syscall.SIGKILL)
}

func (in *Instance) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if in.cmd == nil || in.stopped() {
		return
	}
	_ = in.cmd.Process.Signal(sig)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-in.done:
	case <-timer.C:
		_ = in.cmd.Process.Kill()
		<-in.done
		t.Errorf("mariadbd (port %d) ignored %v for %s and was killed", in.Port, sig, stopTimeout)
	}
}

func (in *Instance) stopped() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// Restart starts a stopped or killed instance again on the same data
// directory and port, and waits until it accepts the admin. The init file
// runs again, as at every start.
func (in *Instance) Restart(t testing.TB) {
	t.Helper()
	in.Stop(t)
	in.launch(t)
	in.waitReady(t)
}

// Endpoint is the admin account over TCP.
func (in *Instance) Endpoint() mysql.Endpoint {
	return mysql.Endpoint{Host: "127.0.0.1", Port: in.Port, User: AdminUser, Password: in.AdminPassword, CA: in.ca}
}

// Source is the replication account, for replicas of this instance.
func (in *Instance) Source() mysql.Source {
	return mysql.Source{Host: "127.0.0.1", Port: in.Port, User: ReplUser, Password: in.ReplPassword}
}

// Open connects as the admin over TCP; the Server is closed when the test
// ends.
func (in *Instance) Open(t testing.TB) *mysql.Server {
	t.Helper()
	return in.OpenAs(t, AdminUser, in.AdminPassword)
}

// OpenAs connects as another account over TCP; the Server is closed when
// the test ends.
func (in *Instance) OpenAs(t testing.TB, user, password string) *mysql.Server {
	t.Helper()
	ep := mysql.Endpoint{Host: "127.0.0.1", Port: in.Port, User: user, Password: password, CA: in.ca}
	srv, err := mysql.Open(ep, mysql.MariaDB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}
