package executor

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunDirMustBeOurs: the run directory's name is predictable (a backup
// task's id is its time to the second), so another user of the agent can
// make it first, writable by them, and swap the option file with the
// admin's password (or the CA file) before the client tools read it. A
// directory in its place that is not ours and private is refused.
func TestRunDirMustBeOurs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	taskID := "shop.orders.backup.20261126T031500Z"
	run := runDir(taskID)
	// The attacker's directory, made before the backup starts.
	if err := os.Mkdir(run, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(run, 0o777); err != nil {
		t.Fatal(err)
	}
	opts, err := writeClientOptions(run, "mysos_admin", "ADMIN-PASSWORD", "")
	if err != nil {
		return // refused: what we want
	}
	fi, _ := os.Stat(filepath.Dir(opts))
	t.Errorf("the admin's option file %s was written into a pre-existing directory of mode %v that others may write: "+
		"anyone can replace it before mariadb-dump reads it", opts, fi.Mode().Perm())
}

// TestPrivateDirAcceptsOnlyItsOwn: a restarted executor finds its own run
// directory again; a symbolic link in its place is refused.
func TestPrivateDirAcceptsOnlyItsOwn(t *testing.T) {
	tmp := t.TempDir()
	own := filepath.Join(tmp, "own")
	if err := ensurePrivateDir(own); err != nil {
		t.Fatal(err)
	}
	if err := ensurePrivateDir(own); err != nil {
		t.Fatalf("its own directory, again: %v", err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(own, link); err != nil {
		t.Fatal(err)
	}
	if err := ensurePrivateDir(link); err == nil {
		t.Fatal("a symbolic link in place of the run directory was accepted")
	}
}
