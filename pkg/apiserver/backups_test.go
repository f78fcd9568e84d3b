package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

const backupsPath = clustersPath + "/shop/backups"

// finishJob completes the cluster's job as the backup task and the
// reconciler would: a manifest in the target, the job Succeeded.
func (a *apiTest) finishJob(id string) {
	a.t.Helper()
	ctx := context.Background()
	jobs, err := a.store.ListBackupJobs(ctx, "default", "shop")
	if err != nil || len(jobs) != 1 || jobs[0].ID != id {
		a.t.Fatalf("jobs %+v (%v); want %s", jobs, err, id)
	}
	writeManifest(a.t, a.backups, "shop", id, "mariadb")
	j := jobs[0]
	j.Phase, j.Size, j.FinishedAt = store.BackupSucceeded, 1234, time.Now()
	if err := a.store.PutBackupJob(ctx, j); err != nil {
		a.t.Fatal(err)
	}
}

func writeManifest(t *testing.T, dest, cluster, id, flavor string) {
	t.Helper()
	target, err := backup.OpenTarget(dest, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	m := backup.Manifest{ID: id, Namespace: "default", Cluster: cluster, Instance: cluster + "-1", StartedAt: now, FinishedAt: now.Add(time.Second),
		Flavor: flavor, GTIDPosition: "0-1-5", Payload: backup.Payload{Format: backup.FormatSQLZstd, Object: backup.DumpObject, Size: 1234}}
	if err := backup.WriteManifest(context.Background(), target, m); err != nil {
		t.Fatal(err)
	}
}

func (a *apiTest) listBackups() []spec.Backup {
	a.t.Helper()
	code, raw := a.do("GET", backupsPath, "", "")
	if code != http.StatusOK {
		a.t.Fatalf("GET %s: %d %s", backupsPath, code, raw)
	}
	var list spec.BackupList
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		a.t.Fatal(err)
	}
	return list.Items
}

// TestBackupRequestsListAndDelete: an on-demand backup is a Pending job
// (one at a time); a complete backup is listed from its target, and
// deleting it removes it there.
func TestBackupRequestsListAndDelete(t *testing.T) {
	a := newAPI(t)
	a.expectStatus("POST", backupsPath, "", "", http.StatusNotFound, spec.ReasonNotFound)
	a.create(validYAML)
	code, raw := a.do("POST", backupsPath, "", "")
	var b spec.Backup
	if code != http.StatusAccepted || json.Unmarshal([]byte(raw), &b) != nil || b.Phase != spec.BackupPhasePending || b.Destination != a.backups {
		t.Fatalf("POST %s: %d %s; want 202 with a Pending backup to %s", backupsPath, code, raw, a.backups)
	}
	a.expectStatus("POST", backupsPath, "", "", http.StatusConflict, spec.ReasonConflict, "still being taken")
	if items := a.listBackups(); len(items) != 1 || items[0].ID != b.ID || items[0].Phase != spec.BackupPhasePending {
		t.Fatalf("backups %+v; want %s Pending", items, b.ID)
	}
	a.expectStatus("DELETE", backupsPath+"/"+b.ID, "", "", http.StatusConflict, spec.ReasonConflict, "still being taken")

	a.finishJob(b.ID)
	items := a.listBackups()
	if len(items) != 1 || items[0].Phase != spec.BackupPhaseComplete || items[0].GTIDPosition != "0-1-5" || items[0].Size != 1234 {
		t.Fatalf("backups %+v; want %s Complete from its manifest", items, b.ID)
	}
	if code, raw := a.do("GET", backupsPath+"/"+b.ID, "", ""); code != http.StatusOK || !strings.Contains(raw, `"phase": "Complete"`) {
		t.Fatalf("GET one: %d %s", code, raw)
	}
	a.expectStatus("GET", backupsPath+"/20200101T000000Z", "", "", http.StatusNotFound, spec.ReasonNotFound, "backup list")
	a.expectStatus("GET", backupsPath+"/latest", "", "", http.StatusNotFound, spec.ReasonNotFound, "backup id")
	a.expectStatus("GET", backupsPath+"?destination=ftp://x/y", "", "", http.StatusBadRequest, spec.ReasonInvalid, "hdfs://")
	if code, raw := a.do("DELETE", backupsPath+"/"+b.ID, "", ""); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, raw)
	}
	if items := a.listBackups(); len(items) != 0 {
		t.Fatalf("backups after delete: %+v", items)
	}
}

// TestRestoreNamesABackupThatExists: spec.restore.from is checked against
// the target at create, with an answer naming the field.
func TestRestoreNamesABackupThatExists(t *testing.T) {
	a := newAPI(t)
	writeManifest(t, a.backups, "old", "20261126T031500Z", "mariadb")
	restoring := func(name, from, flavor string) string {
		return strings.Replace(validYAML, "name: shop", "name: "+name, 1) + "  flavor: " + flavor + "\n  restore: {from: " + from + "}\n"
	}
	for _, tc := range []struct{ name, from, flavor, says string }{
		{"missing", "old/20261126T031501Z", "mariadb", "no complete backup"},
		{"other-cluster", "older/20261126T031500Z", "mariadb", "backup list older"},
		{"flavor", "old/20261126T031500Z", "mysql", "restore into the same flavour"},
	} {
		st := a.expectStatus("POST", clustersPath, "application/yaml", restoring(tc.name, tc.from, tc.flavor), http.StatusBadRequest, spec.ReasonInvalid, tc.says)
		if !hasCause(st, "spec.restore.from") {
			t.Fatalf("%s: no cause names spec.restore.from: %+v", tc.name, st.Details)
		}
	}
	if code, raw := a.do("POST", clustersPath, "application/yaml", restoring("new", "old/20261126T031500Z", "mariadb")); code != http.StatusCreated {
		t.Fatalf("a restore from an existing backup: %d %s", code, raw)
	}
}
