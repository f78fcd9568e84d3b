package mysqltest

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mysos-project/mysos/internal/testutil"
)

// The data directory template: mariadb-install-db takes about 0.7 s, a copy
// of its result about 40 ms. A fresh MariaDB data directory holds nothing
// per server (no uuid, no binary log: the bootstrap logs nothing), so copies
// with distinct server_ids replicate fine. The template lives in the
// temporary directory of the test that made it and is forgotten when that
// test ends; the next test makes a new one.
var template struct {
	sync.Mutex
	dir string
}

// copyTemplate fills datadir with a freshly installed data directory.
func copyTemplate(t testing.TB, datadir string) {
	t.Helper()
	template.Lock()
	defer template.Unlock()
	if template.dir == "" {
		template.dir = install(t)
		t.Cleanup(func() {
			template.Lock()
			template.dir = ""
			template.Unlock()
		})
	}
	if err := copyDir(template.dir, datadir); err != nil {
		t.Fatalf("copy the data directory template: %v", err)
	}
}

// install runs mariadb-install-db into a new directory: no test database,
// root only through the unix socket (the default); Mysos' accounts come from
// the init file.
func install(t testing.TB) string {
	t.Helper()
	bin := installBinary(t)
	dir := t.TempDir()
	datadir := filepath.Join(dir, "data")
	cnf := filepath.Join(dir, "install.cnf")
	// An own tmpdir: concurrent bootstraps sharing /tmp were seen to
	// collide on their temporary tables' file names.
	lines := append([]string{"[mysqld]", "datadir=" + datadir, "tmpdir=" + dir}, smallBuffers...)
	writeFile(t, cnf, strings.Join(lines, "\n")+"\n")
	// --defaults-file must come first, or /etc/mysql/my.cnf is read too.
	args := append([]string{"--defaults-file=" + cnf, "--skip-test-db"}, asRoot()...)
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out.String())
	}
	return datadir
}

func installBinary(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"mariadb-install-db", "mysql_install_db"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return testutil.RequireBinary(t, "mariadb-install-db", installHint)
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(path, target, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
