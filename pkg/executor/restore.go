package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
)

// restore loads a full backup into the temporary server (see fill), then,
// for a point-in-time restore, replays the archived binary logs after it
// (replay.go), and returns the GTID position the data then holds. The dump
// and the segments are checked against their manifests: a corrupt one
// fails the restore, saying so, and the data directory stays unrenamed.
func (m *mysqld) restore(ctx context.Context) (mysql.GTIDSet, error) {
	ref := m.spec.Restore.Backup
	set, err := m.restoreFrom(ctx)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("restore from backup %s/%s in %s: %w", ref.Cluster, ref.ID, ref.Target.URL, err)
	}
	return set, nil
}

func (m *mysqld) restoreFrom(ctx context.Context) (mysql.GTIDSet, error) {
	ref := m.spec.Restore.Backup
	target, err := backup.OpenTarget(ref.Target.URL, backup.Options{HadoopUser: ref.Target.HadoopUser})
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	defer target.Close()
	man, err := backup.ReadManifest(ctx, target, ref.Namespace, ref.Cluster, ref.ID)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	if man.Flavor != m.spec.Flavor {
		return mysql.GTIDSet{}, fmt.Errorf("the backup is of a %s server (%s); this member runs %s", man.Flavor, man.ServerVersion, m.spec.Flavor)
	}
	set, err := m.flavor.ParseGTIDSet(man.GTIDPosition)
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("its manifest's GTID position: %w", err)
	}
	// Before the backup is loaded: a replay that cannot be done fails fast.
	plan, err := m.planReplay(ctx, target, man, set)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	admin := m.spec.AdminUser()
	opts, err := writeClientOptions(m.cfg.RunDir, admin.Name, admin.Password, "")
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	defer os.Remove(opts)
	if err := m.loadBackup(ctx, target, man, opts); err != nil {
		return mysql.GTIDSet{}, err
	}
	if plan == nil {
		return set, nil
	}
	return plan.run(ctx, m, opts)
}

// loadBackup loads the backup's dump, checked as it streams.
func (m *mysqld) loadBackup(ctx context.Context, target backup.Target, man backup.Manifest, opts string) error {
	r, err := backup.OpenVerified(ctx, target, man)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := m.load(ctx, opts, r); err != nil {
		// A corrupt dump mostly fails as a SQL error: the rest of it tells
		// whether the object is the cause.
		if _, rerr := io.Copy(io.Discard, r); errors.Is(rerr, backup.ErrCorrupt) {
			return rerr
		}
		return err
	}
	return nil
}
