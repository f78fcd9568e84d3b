package scheduler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/pki"
)

func TestLoadMySQLCA(t *testing.T) {
	ca, err := pki.NewCA("given", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(cert, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, ca.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := loadMySQLCA(Options{}); got != nil || err != nil {
		t.Fatalf("no flags: %v, %v; want a CA per cluster (nil)", got, err)
	}
	got, err := loadMySQLCA(Options{MySQLCACert: cert, MySQLCAKey: key})
	if err != nil || !got.Cert.Equal(ca.Cert) {
		t.Fatalf("given CA: %v", err)
	}
	other := filepath.Join(dir, "other-key.pem")
	if err := os.WriteFile(other, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for want, o := range map[string]Options{
		"--mysql-ca-cert and --mysql-ca-key go together": {MySQLCACert: cert},
		"go together":               {MySQLCAKey: key},
		"parse CA key":              {MySQLCACert: cert, MySQLCAKey: other},
		"no such file or directory": {MySQLCACert: filepath.Join(dir, "nope"), MySQLCAKey: key},
	} {
		if _, err := loadMySQLCA(o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s / %s: %v; want an error saying %q", o.MySQLCACert, o.MySQLCAKey, err, want)
		}
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := loadMySQLCA(Options{MySQLCACert: cert, MySQLCAKey: key}); err == nil || !strings.Contains(err.Error(), "run chmod 600 "+key) {
		t.Fatalf("a key group may read: %v; want it refused", err)
	}
}
