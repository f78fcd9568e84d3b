package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/taskspec"
)

// backupJob is the "backup" workload: one full backup of a member, taken
// over the network with mariadb-dump into a backup target, after which the
// task finishes (TASK_FINISHED), or fails with the reason (TASK_FAILED).
// The dump is stored first and its manifest last, so a backup that failed
// or was killed halfway is never listed as good.
type backupJob struct {
	spec   *taskspec.Backup
	flavor mysql.Flavor
	run    string // holds the client option file

	cancel context.CancelFunc
	ending
	once sync.Once
}

// NewBackup is the Factory of the "backup" workload.
func NewBackup(task mesos.TaskInfo, _ string) (Workload, error) {
	d, err := taskspec.Parse(task.Data)
	if err != nil {
		return nil, err
	}
	if d.Backup == nil {
		return nil, errors.New(`task data for the backup workload lacks "backup"`)
	}
	flavor, err := mysql.FlavorByName(d.Backup.Flavor)
	if err != nil {
		return nil, err
	}
	if err := backup.ValidRef(d.Backup.Namespace, d.Backup.Cluster, d.Backup.ID); err != nil {
		return nil, err
	}
	return &backupJob{spec: d.Backup, flavor: flavor, run: runDir(task.TaskID.Value), ending: newEnding()}, nil
}

// Start returns at once: the backup runs until it is done or stopped, and
// its context is not Start's, which only covers starting.
func (b *backupJob) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() {
		err := b.take(ctx)
		if err != nil {
			s := b.spec
			err = fmt.Errorf("backup %s/%s to %s: %w", s.Cluster, s.ID, s.Target.URL, err)
		}
		b.end(err)
	}()
	return nil
}

// Stop cancels the backup (killing the dump) and waits until it is over. A
// backup stopped before its manifest was written is never listed.
func (b *backupJob) Stop(time.Duration) error {
	b.once.Do(func() {
		if b.cancel != nil {
			b.cancel()
			<-b.done
		}
		os.RemoveAll(b.run)
	})
	return nil
}

// take takes the backup: the member's state first, then the dump, then
// the manifest.
func (b *backupJob) take(ctx context.Context) error {
	s := b.spec
	target, err := backup.OpenTarget(s.Target.URL, backup.Options{HadoopUser: s.Target.HadoopUser})
	if err != nil {
		return err
	}
	defer target.Close()
	src, err := mysql.Open(mysql.Endpoint{Host: s.Source.Host, Port: s.Source.Port, User: s.User, Password: s.Password, CA: []byte(s.Source.CA)}, b.flavor)
	if err != nil {
		return err
	}
	defer src.Close()
	started := time.Now().UTC()
	// The position is read before the databases are listed, as for a seed:
	// with none to dump, it is the backup's position.
	st, err := src.Status(ctx)
	if err != nil {
		return fmt.Errorf("read the state of %s: %w", s.Instance, err)
	}
	dbs, err := userDatabases(ctx, src)
	if err != nil {
		return fmt.Errorf("list the databases of %s: %w", s.Instance, err)
	}
	m := backup.Manifest{ID: s.ID, Namespace: s.Namespace, Cluster: s.Cluster, ClusterUID: s.ClusterUID,
		Instance: s.Instance, StartedAt: started, Flavor: b.flavor.Name(), ServerVersion: st.Version,
		Payload: backup.Payload{Format: backup.FormatSQLZstd, Object: backup.DumpObject}, Databases: dbs}
	set, err := b.dump(ctx, target, &m, st.GTIDExecuted)
	if err != nil {
		return err
	}
	m.GTIDPosition, m.FinishedAt = set.String(), time.Now().UTC()
	if err := backup.WriteManifest(ctx, target, m); err != nil {
		// The dump stays: a dump without manifest is never listed, and a
		// Put can fail after its rename (a lost reply), leaving a manifest
		// that must not point at nothing.
		return fmt.Errorf("write %s: %w", backup.ManifestObject, err)
	}
	return nil
}

func (b *backupJob) object() string {
	return path.Join(backup.Dir(b.spec.Namespace, b.spec.Cluster, b.spec.ID), backup.DumpObject)
}

// dump stores the dump of m.Databases, filling in m's sizes and checksum,
// and returns the GTID position of its data. A member without user
// databases gets a dump of comments, at the position read before.
func (b *backupJob) dump(ctx context.Context, target backup.Target, m *backup.Manifest, before mysql.GTIDSet) (mysql.GTIDSet, error) {
	if len(m.Databases) == 0 {
		note := fmt.Sprintf("-- Mysos: %s had no user databases at GTID position %s.\n", m.Instance, before)
		return before, b.upload(ctx, target, m, strings.NewReader(note))
	}
	ca, err := writeCAFile(b.run, b.spec.Source.CA)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	if ca != "" {
		defer os.Remove(ca)
	}
	opts, err := writeClientOptions(b.run, b.spec.User, b.spec.Password, ca)
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	defer os.Remove(opts)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	dumped := make(chan string, 1)
	go func() {
		pos, err := dumpDatabases(ctx, opts, b.spec.Source.Host, b.spec.Source.Port, m.Databases, pw)
		if err != nil {
			err = &dumpError{err}
		}
		pw.CloseWithError(err)
		dumped <- pos
	}()
	err = b.upload(ctx, target, m, pr)
	// After a failed upload nobody reads the dump: kill it, and fail its
	// writes.
	cancel()
	pr.CloseWithError(errors.New("the upload ended"))
	pos := <-dumped
	var de *dumpError
	if errors.As(err, &de) {
		return mysql.GTIDSet{}, de
	}
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	return dumpSnapshot(b.flavor, before, pos)
}

// upload compresses r into the target, as m's object.
func (b *backupJob) upload(ctx context.Context, target backup.Target, m *backup.Manifest, r io.Reader) error {
	stored, raw, err := backup.Upload(ctx, target, b.object(), r)
	if err != nil {
		return fmt.Errorf("upload %s: %w", backup.DumpObject, err)
	}
	m.Size, m.RawSize, m.SHA256 = stored.Size, raw, stored.SHA256
	return nil
}

// dumpError marks a failure of the dump itself, which the upload that read
// it then reports too: the dump's is the one to tell.
type dumpError struct{ err error }

func (e *dumpError) Error() string { return "dump: " + e.err.Error() }
func (e *dumpError) Unwrap() error { return e.err }
