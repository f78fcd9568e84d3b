package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// mysqld readiness: how long a start (crash recovery included) may take,
// and how often it is probed.
const (
	mysqldStartTimeout = 5 * time.Minute
	mysqldProbe        = 100 * time.Millisecond
	errorLogTail       = 20 // lines of the error log in a failure message
)

// mysqld is the "mysql" workload: one mysqld on the task's persistent
// volume. Its data directory is initialised the first time only; every
// start runs an init file (in the sandbox, mode 0600, removed once the
// server is up) that creates Mysos' accounts or resets their passwords, so
// no password is ever on a command line, in the environment or in a log.
type mysqld struct {
	taskID string
	spec   *taskspec.MySQL
	flavor mysql.Flavor
	cfg    mysql.InstanceConfig
	cnf    string // the rendered my.cnf
	init   string // the init file

	cmd *exec.Cmd
	ending
	once sync.Once
}

// NewMySQL is the Factory of the "mysql" workload.
func NewMySQL(task mesos.TaskInfo, sandbox string) (Workload, error) {
	d, err := taskspec.Parse(task.Data)
	if err != nil {
		return nil, err
	}
	if d.MySQL == nil {
		return nil, errors.New(`task data for the mysql workload lacks "mysql"`)
	}
	flavor, err := mysql.FlavorByName(d.MySQL.Flavor)
	if err != nil {
		return nil, err
	}
	volume, err := volumeDir(task, sandbox)
	if err != nil {
		return nil, err
	}
	port, err := taskPort(task)
	if err != nil {
		return nil, err
	}
	run := runDir(task.TaskID.Value)
	m := &mysqld{taskID: task.TaskID.Value, spec: d.MySQL, flavor: flavor, ending: newEnding(),
		cnf: filepath.Join(run, "my.cnf"), init: filepath.Join(run, "init.sql")}
	m.cfg = mysql.InstanceConfig{
		Flavor: d.MySQL.Flavor, ServerID: d.MySQL.ServerID, Port: int(port),
		BindAddress: bindAddress(d.MySQL.Host), ReportHost: d.MySQL.Host,
		DataDir: filepath.Join(volume, "mysql"), RunDir: run, LogDir: sandbox, TmpDir: run,
		MemoryMiB: d.MySQL.MemoryMiB, SemiSync: d.MySQL.SemiSync, Overrides: d.MySQL.Config,
	}
	if t := d.MySQL.TLS; t != nil {
		m.cfg.TLS = &mysql.InstanceTLS{CAFile: filepath.Join(run, tlsCAFile), CertFile: filepath.Join(run, tlsCertFile),
			KeyFile: filepath.Join(run, tlsKeyFile), Required: t.Required}
	}
	return m, nil
}

// The TLS files of a mysqld (spec.tls), in its run directory: mode 0600,
// removed with it when the task ends.
const (
	tlsCAFile   = "ca.pem"
	tlsCertFile = "server-cert.pem"
	tlsKeyFile  = "server-key.pem"
)

// runDir holds the socket, pid file, config and init file. The sandbox is
// too deep for a unix socket path (108 bytes at most), so it lives in the
// temporary directory, named after the task.
func runDir(taskID string) string {
	sum := sha256.Sum256([]byte(taskID))
	return filepath.Join(os.TempDir(), "mysos-"+hex.EncodeToString(sum[:6]))
}

func bindAddress(host string) string {
	if net.ParseIP(host) != nil {
		return host
	}
	return "0.0.0.0"
}

// volumeDir is the task's persistent volume in the sandbox.
func volumeDir(task mesos.TaskInfo, sandbox string) (string, error) {
	for _, r := range task.Resources {
		if r.GetDisk().GetPersistence() == nil || r.GetDisk().GetVolume().GetContainerPath() == "" {
			continue
		}
		p := r.GetDisk().GetVolume().GetContainerPath()
		if !filepath.IsAbs(p) {
			p = filepath.Join(sandbox, p)
		}
		return p, nil
	}
	return "", errors.New("the task has no persistent volume for the data directory")
}

// taskPort is the one port the task reserved.
func taskPort(task mesos.TaskInfo) (uint64, error) {
	for _, r := range task.Resources {
		if r.Name == "ports" && len(r.GetRanges().GetRange()) > 0 {
			return r.GetRanges().GetRange()[0].Begin, nil
		}
	}
	return 0, errors.New("the task has no port")
}

// Start initialises the data directory if it is new, starts mysqld and
// returns once it accepts connections as Mysos' admin.
func (m *mysqld) Start(ctx context.Context) error {
	if err := m.prepare(); err != nil {
		return err
	}
	if err := m.initDataDir(ctx); err != nil {
		return err
	}
	if err := m.startServer(); err != nil {
		return err
	}
	if err := m.waitReady(ctx, m.done, func() error { return m.err }); err != nil {
		_ = m.Stop(10 * time.Second)
		return err
	}
	// The accounts exist now; the passwords need not stay on disk.
	_ = os.Remove(m.init)
	return nil
}

// prepare writes the config and the init file.
func (m *mysqld) prepare() error {
	if err := ensurePrivateDir(m.cfg.RunDir); err != nil {
		return err
	}
	cnf, err := mysql.RenderConfig(m.cfg)
	if err != nil {
		return fmt.Errorf("my.cnf: %w", err)
	}
	if err := os.WriteFile(m.cnf, cnf, 0o600); err != nil {
		return err
	}
	if t := m.cfg.TLS; t != nil {
		for path, content := range map[string]string{t.CAFile: m.spec.TLS.CA, t.CertFile: m.spec.TLS.Cert, t.KeyFile: m.spec.TLS.Key} {
			if err := writePrivate(path, []byte(content)); err != nil {
				return fmt.Errorf("TLS: %w", err)
			}
		}
	}
	return os.WriteFile(m.init, []byte(m.flavor.BootstrapSQL(m.users())), 0o600)
}

// writePrivate writes path readable by this user alone, whatever mode an
// earlier file of that name had.
func writePrivate(path string, content []byte) error {
	if err := os.WriteFile(path, content, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

func (m *mysqld) users() []mysql.User {
	out := make([]mysql.User, 0, len(m.spec.Users))
	for _, u := range m.spec.Users {
		out = append(out, mysql.User{Name: u.Name, Host: u.Host, Password: u.Password,
			Privileges: u.Privileges, On: u.On, WithGrantOption: u.WithGrantOption})
	}
	return out
}

// initDataDir creates the data directory the first time: into a scratch
// directory renamed into place at the end, so a crash halfway leaves no
// half-initialised datadir behind. A new member of a cluster that has data
// is seeded from a donor before the rename (seed.go), the first member of a
// restored cluster is filled from the backup (restore.go).
func (m *mysqld) initDataDir(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(m.cfg.DataDir, "mysql")); err == nil {
		return nil
	}
	scratch := m.cfg.DataDir + ".init"
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	if err := os.MkdirAll(scratch, 0o750); err != nil {
		return err
	}
	cmd, err := installCommand(ctx, m.spec.Flavor, m.cnf, scratch)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initialise the data directory (%s): %v\n%s", cmd.Path, err, tail(out.String(), errorLogTail))
	}
	switch {
	case m.spec.Seed != nil:
		err = m.fill(ctx, scratch, "seed", m.seed)
	case m.spec.Restore != nil:
		err = m.fill(ctx, scratch, "restore", m.restore)
	}
	if err != nil {
		return err
	}
	return os.Rename(scratch, m.cfg.DataDir)
}

// installCommand initialises a data directory: mariadb-install-db, or
// mysqld --initialize-insecure for MySQL.
func installCommand(ctx context.Context, flavor, cnf, datadir string) (*exec.Cmd, error) {
	args := []string{"--defaults-file=" + cnf, "--datadir=" + datadir}
	var bin string
	var err error
	switch flavor {
	case "mariadb":
		bin, err = findBinary("mariadb-install-db", "mysql_install_db")
		args = append(args, "--skip-test-db", "--auth-root-authentication-method=socket")
	default:
		bin, err = findBinary("mysqld")
		args = append(args, "--initialize-insecure")
	}
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, bin, append(args, runAsRoot()...)...), nil
}

// runAsRoot: mysqld refuses to run as root unless told to.
func runAsRoot() []string {
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

// findBinary looks a server binary up in PATH and then in /usr/sbin, which
// an executor's PATH may lack.
func findBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		if p := filepath.Join("/usr/sbin", n); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s is installed (apt-get install mariadb-server)", strings.Join(names, ", "))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func (m *mysqld) startServer() error {
	srv, err := m.launchServer("--init-file=" + m.init)
	if err != nil {
		return err
	}
	m.cmd = srv.cmd
	go func() {
		<-srv.done
		m.end(srv.err)
	}()
	return nil
}

// server is one mysqld process: the instance's, or a temporary one that
// fills a new data directory.
type server struct {
	cmd *exec.Cmd
	ending
}

// launchServer starts mysqld with the instance's config and extra options.
func (m *mysqld) launchServer(extra ...string) (*server, error) {
	names := []string{"mariadbd", "mysqld"}
	if m.spec.Flavor != "mariadb" {
		names = []string{"mysqld"}
	}
	bin, err := findBinary(names...)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{"--defaults-file=" + m.cnf}, extra...), runAsRoot()...)
	cmd := exec.Command(bin, args...)
	// mysqld shares the executor's process group, so the agent's kill of
	// that group takes it along; and if the executor alone dies, mysqld is
	// asked to shut down cleanly rather than left running as an orphan.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	srv := &server{cmd: cmd, ending: newEnding()}
	go func() {
		err := cmd.Wait()
		srv.end(fmt.Errorf("mysqld exited (%v); the end of its error log:\n%s", exitStatus(err), m.errorLogTail()))
	}()
	return srv, nil
}

// stop asks the server to shut down cleanly (SIGTERM) and kills it if it
// is not gone within grace.
func (s *server) stop(grace time.Duration) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-s.done:
		return nil
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("mysqld did not shut down within %s and was killed", grace)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// waitReady polls until the server accepts Mysos' admin on its socket.
func (m *mysqld) waitReady(ctx context.Context, done <-chan struct{}, why func() error) error {
	admin := m.spec.AdminUser()
	srv, err := mysql.Open(mysql.Endpoint{Socket: m.cfg.SocketPath(), User: admin.Name, Password: admin.Password}, m.flavor)
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, mysqldStartTimeout)
	defer cancel()
	tick := time.NewTicker(mysqldProbe)
	defer tick.Stop()
	for {
		pingCtx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := srv.Ping(pingCtx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return why()
		case <-ctx.Done():
			return fmt.Errorf("mysqld did not accept connections within %s (last error: %v); the end of its error log:\n%s",
				mysqldStartTimeout, err, m.errorLogTail())
		case <-tick.C:
		}
	}
}

func (m *mysqld) errorLogTail() string {
	b, err := os.ReadFile(m.cfg.ErrorLog())
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	return tail(string(b), errorLogTail)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop asks mysqld to shut down (SIGTERM: a clean InnoDB shutdown) and
// kills it if it is not gone within grace.
func (m *mysqld) Stop(grace time.Duration) error {
	var err error
	m.once.Do(func() {
		defer os.RemoveAll(m.cfg.RunDir)
		if m.cmd != nil {
			err = (&server{cmd: m.cmd, ending: ending{done: m.done}}).stop(grace)
		}
	})
	return err
}

// Healthy implements HealthChecker: the server answers Mysos' admin on its
// socket.
func (m *mysqld) Healthy(ctx context.Context) error {
	admin := m.spec.AdminUser()
	srv, err := mysql.Open(mysql.Endpoint{Socket: m.cfg.SocketPath(), User: admin.Name, Password: admin.Password}, m.flavor)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Ping(ctx)
}
