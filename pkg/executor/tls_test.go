package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// TestTLSWorkloads: against a source that requires TLS (spec.tls
// {enabled, required}), a backup, a seed and the binlog archiver connect
// over TLS with the CA they are given (a backup without it is refused),
// and a new member serves TLS with the certificate from its task data,
// kept in files only its user reads.
func TestTLSWorkloads(t *testing.T) {
	ca, err := pki.NewCA("mysos test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	src, before := startTLSSource(t, ca)
	target := taskspec.Target{URL: "file://" + t.TempDir()}
	caPEM := string(ca.CertPEM)

	t.Run("Backup", func(t *testing.T) {
		plain := backupSpec(src, target, backup.NewID(time.Now()))
		if err := runBackup(t, plain); err == nil {
			t.Fatal("a backup without the CA reached a source that requires TLS")
		}
		spec := backupSpec(src, target, backup.NewID(time.Now().Add(time.Second)))
		spec.Source.CA = caPEM
		if err := runBackup(t, spec); err != nil {
			t.Fatalf("backup over TLS: %v", err)
		}
		checkManifest(t, target, readManifest(t, target, spec.ID), src, before)
	})

	t.Run("SeedServingTLS", func(t *testing.T) {
		pair, err := ca.Issue("shop-2", []string{"127.0.0.1"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		spec := restoreSpec(target, "")
		spec.ServerID, spec.Restore = 23, nil
		for i := range spec.Users { // the cluster's admin, as on the donor
			spec.Users[i].Password = src.AdminPassword
		}
		spec.Seed = &taskspec.Donor{Host: "127.0.0.1", Port: src.Port, CA: caPEM}
		spec.TLS = &taskspec.TLS{CA: caPEM, Cert: string(pair.CertPEM), Key: string(pair.KeyPEM), Required: true}
		w, _, ep := mysqldWorkload(t, spec)
		ep.CA = ca.CertPEM
		checkCopy(t, w, ep, src, before)

		run := w.(*mysqld).cfg.RunDir
		for _, name := range []string{tlsCAFile, tlsCertFile, tlsKeyFile} {
			st, err := os.Stat(filepath.Join(run, name))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, mode %v; want 0600", name, err, st.Mode())
			}
		}
		if key, _ := os.ReadFile(filepath.Join(run, tlsKeyFile)); string(key) != spec.TLS.Key {
			t.Fatal("the key file does not hold the task's key")
		}
		db, err := mysql.Open(ep, mysql.MariaDB)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var cipher string
		if err := db.DB().QueryRow("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").Scan(&cipher); err != nil || cipher == "" {
			t.Fatalf("Ssl_cipher %q (%v); want the admin's connection encrypted", cipher, err)
		}
		plain := ep
		plain.CA = nil
		pdb, err := mysql.Open(plain, mysql.MariaDB)
		if err != nil {
			t.Fatal(err)
		}
		defer pdb.Close()
		if err := pdb.Ping(context.Background()); err == nil {
			t.Fatal("the new member accepted a client without TLS; spec.tls.required")
		}
	})

	t.Run("Archiver", func(t *testing.T) {
		spec := archiverSpec(src, target)
		spec.Source.CA = caPEM
		startArchiver(t, spec)
		db := src.Open(t)
		mustExec(t, db, "INSERT INTO shop.orders VALUES (9001, 'archived over TLS', 1)")
		waitArchived(t, target, db)
	})
}

// startTLSSource is startSource's server with TLS required, its
// certificate for 127.0.0.1 signed by ca.
func startTLSSource(t *testing.T, ca *pki.CA) (*mysqltest.Instance, mysql.GTIDSet) {
	t.Helper()
	pair, err := ca.Issue("shop-1", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cnf []string
	for opt, content := range map[string][]byte{"ssl_ca": ca.CertPEM, "ssl_cert": pair.CertPEM, "ssl_key": pair.KeyPEM} {
		p := filepath.Join(dir, strings.ReplaceAll(opt, "_", "-")+".pem")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		cnf = append(cnf, opt+"="+p)
	}
	in := mysqltest.Start(t, mysqltest.Options{Config: append(cnf, "require_secure_transport=ON"), CA: ca.CertPEM})
	db := in.Open(t)
	mustExec(t, db,
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(64), qty INT)",
		"INSERT INTO shop.orders SELECT seq, CONCAT('item ', seq), seq % 7 FROM shop.seq_1_to_5000",
		"CREATE VIEW shop.big AS SELECT * FROM shop.orders WHERE qty > 5",
		"CREATE PROCEDURE shop.total(OUT n INT) SELECT SUM(qty) INTO n FROM shop.orders")
	pos, err := db.GTIDExecuted(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return in, pos
}
