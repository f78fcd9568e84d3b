package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
)

// BenchmarkBackupRestore measures backup and restore throughput on a real
// HDFS: a 3-instance cluster holding about 40 MiB of rows (dump size) is
// backed up from a replica (mariadb-dump | zstd | HDFS, the manifest's
// start to finish), then restored into a new one-member cluster (from
// apply to Ready: launch, install, download, checksum, load). Throughputs
// are of the uncompressed dump.
func BenchmarkBackupRestore(b *testing.B) {
	testutil.RequireBinary(b, "mariadb-install-db", "apt-get install -y mariadb-server")
	hdfs := testutil.StartHDFS(b)
	dest := "hdfs://" + hdfs.Addr + "/mysos/backups"
	c := startDevCluster(b, 4)
	s := startScheduler(b, nil, "--master", c.MasterURL(), "--executor", filepath.Join(binDir, "mysos-executor"))
	password, _ := startShop(b, s, strings.Replace(fmt.Sprintf(backupManifest, "shop", 3, dest, ""), "keep: 2", "keep: 1000", 1))
	db := openMySQL(b, getCluster(b, s, "shop").Status.Endpoints.Primary, "app", password)
	mustExec(b, db, "CREATE TABLE shop.big (id INT AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(255))")
	mustExec(b, db, "INSERT INTO shop.big (pad) SELECT CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND())) FROM shop.seq_1_to_2000")
	for range 7 { // 2,000 rows doubled 7 times: 256,000 rows of ~200 random hex digits
		mustExec(b, db, "INSERT INTO shop.big (pad) SELECT CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND())) FROM shop.big")
	}
	var backupSecs, restoreSecs, rawMiB, storedMiB float64
	b.ResetTimer()
	for i := range b.N {
		s.mustCtl("backup", "create", "shop")
		full := lastBackup(b, s, "shop")
		d, err := time.ParseDuration(full.Duration)
		if err != nil {
			b.Fatal(err)
		}
		backupSecs += d.Seconds()
		rawMiB += float64(full.RawSize) / (1 << 20)
		storedMiB += float64(full.Size) / (1 << 20)

		name := fmt.Sprintf("restored-%d", i)
		restore := fmt.Sprintf("  restore: {from: shop/%s}\n", full.ID)
		start := time.Now()
		s.mustCtl("apply", "-f", writeFile(b, b.TempDir(), name+".yaml", fmt.Sprintf(backupManifest, name, 1, dest, restore)))
		s.mustCtl("wait", "clusters/"+name, "--for=condition=Ready", "--timeout=600s")
		restoreSecs += time.Since(start).Seconds()
		s.mustCtl("delete", "clusters", name)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(rawMiB/n, "dump-MiB")
	b.ReportMetric(storedMiB/n, "stored-MiB")
	b.ReportMetric(backupSecs/n, "backup-s")
	b.ReportMetric(rawMiB/backupSecs, "backup-MiB/s")
	b.ReportMetric(restoreSecs/n, "restore-s")
	b.ReportMetric(rawMiB/restoreSecs, "restore-MiB/s")
}
