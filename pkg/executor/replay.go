package executor

// This file is point-in-time recovery: after a restored backup is loaded,
// the cluster's archived binary logs (see the binlog archiver) are
// replayed into the temporary server from the backup's position, up to a
// stop point. Which transactions to replay is decided here, one whole
// transaction at a time; mariadb-binlog only turns their events into SQL,
// which the mariadb client loads as it loads a dump: without writing the
// local binary log, the position being declared at the end (see fill).
//
// Stop rules. StopGTID: every transaction up to and including it. StopTime:
// truncated to the second, every transaction before the first whose GTID
// event's timestamp is at or after that second. Binary-log timestamps are
// whole seconds, of when the committing statement started: a transaction
// replayed committed before StopTime, and every one committed in an earlier
// second than StopTime's is replayed. The replay is always a prefix of the
// archived history; with no stop rule, or past what the archive holds, it
// ends where the archive ends, and the log says where that was.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mysos-project/mysos/pkg/backup"
	"github.com/mysos-project/mysos/pkg/mysql"
)

// replayPlan is what a point-in-time restore replays.
type replayPlan struct {
	target   backup.Target
	cluster  string
	chain    []backup.SegmentManifest
	from     mysql.GTIDSet // the backup's position
	end      mysql.GTIDSet // where the archive ends
	stopTime time.Time     // zero: none
	stopGTID *gtid
	tmpDir   string
}

// replayed is how far a replay went.
type replayed struct {
	pos      mysql.GTIDSet
	txns     int
	last     gtid
	lastTime uint32
	stopped  bool // at the stop point, before the archive's end
}

// planReplay checks that the archive can take backup man, at position
// from, to the stop point; nil when the restore replays nothing. Only the
// archive of the backup's own incarnation of the cluster counts.
func (m *mysqld) planReplay(ctx context.Context, target backup.Target, man backup.Manifest, from mysql.GTIDSet) (*replayPlan, error) {
	r := m.spec.Restore
	if !r.Replay {
		return nil, nil
	}
	if r.StopTime != nil && r.StopTime.Before(man.FinishedAt) {
		return nil, fmt.Errorf("backup %s/%s was taken until %s, after the point in time %s: restore from an older backup",
			man.Cluster, man.ID, man.FinishedAt.Format(time.RFC3339), r.StopTime.Format(time.RFC3339))
	}
	chain, err := backup.Chain(ctx, target, r.Backup.Namespace, r.Backup.Cluster, man.ClusterUID, from)
	if err != nil {
		return nil, err
	}
	p := &replayPlan{target: target, cluster: r.Backup.Cluster, chain: chain, from: from, end: from, tmpDir: m.cfg.TmpDir}
	for _, seg := range chain {
		end, err := m.flavor.ParseGTIDSet(seg.End) // Chain parsed it already
		if err != nil {
			return nil, err
		}
		p.end = p.end.Union(end)
	}
	if r.StopTime != nil {
		p.stopTime = r.StopTime.Truncate(time.Second)
	}
	if r.StopGTID != "" {
		if err := p.setStopGTID(r.StopGTID); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// setStopGTID takes a stop GTID the archive reaches and the backup is not
// past.
func (p *replayPlan) setStopGTID(s string) error {
	g, err := parseGTID(s)
	if err != nil {
		return fmt.Errorf("stop GTID: %w", err)
	}
	if !p.end.Contains(g.position()) {
		return fmt.Errorf("the archive of %s ends at %s, before %s", p.cluster, positionText(p.end), g)
	}
	later, err := after(g, p.from)
	if err != nil {
		return err
	}
	if server, seq, _ := p.from.Domain(g.domain); !later && (server != g.server || seq != g.seq) {
		return fmt.Errorf("the backup is at GTID position %s, past %s: restore from an older backup", p.from, g)
	}
	p.stopGTID = &g
	return nil
}

// run replays the plan into the local server and returns the position
// reached.
func (p *replayPlan) run(ctx context.Context, m *mysqld, opts string) (mysql.GTIDSet, error) {
	done := replayed{pos: p.from}
	if len(p.chain) == 0 {
		p.report(done)
		return done.pos, nil
	}
	bin, err := findBinary("mariadb-binlog", "mysqlbinlog")
	if err != nil {
		return mysql.GTIDSet{}, err
	}
	err = m.loadStream(ctx, opts, func(w io.Writer) error {
		for _, seg := range p.chain {
			if done.stopped {
				break
			}
			if err := p.replaySegment(ctx, bin, seg, w, &done); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return mysql.GTIDSet{}, fmt.Errorf("replay the archive of %s: %w", p.cluster, err)
	}
	p.report(done)
	return done.pos, nil
}

// replaySegment extracts the transactions of seg to replay into a binary-
// log file, checking the whole segment against its manifest, and only then
// has mariadb-binlog write them as SQL to w.
func (p *replayPlan) replaySegment(ctx context.Context, bin string, seg backup.SegmentManifest, w io.Writer, done *replayed) error {
	f, err := os.CreateTemp(p.tmpDir, "replay-*.binlog")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := p.extract(ctx, seg, f, done)
	if err != nil || n == 0 {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "--no-defaults", f.Name())
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s of segment %s: %w: %s", filepath.Base(bin), seg.Name, err, tail(stderr.String(), 5))
	}
	return nil
}

// extract writes the segment's Format_description event and the
// transactions to replay to w, updating done, and returns how many.
func (p *replayPlan) extract(ctx context.Context, seg backup.SegmentManifest, w io.Writer, done *replayed) (int, error) {
	r, err := backup.OpenSegment(ctx, p.target, seg)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(replication.BinLogFileHeader); err != nil {
		return 0, err
	}
	var scan txnScanner
	keep, n := false, 0
	err = readBinlog(r, func(ev *replication.BinlogEvent) error {
		role, err := scan.scan(ev)
		if err != nil {
			return err
		}
		if role == txnBegin {
			if keep, err = p.judge(scan.gtid, scan.time, done); err != nil {
				return err
			}
			if done.stopped {
				return errStopReplay // the rest is not replayed
			}
			if keep {
				n++
			}
		}
		if role == formatDescription || (keep && role != outside) {
			_, err = bw.Write(ev.RawData)
		}
		return err
	})
	if done.stopped {
		err = nil
	}
	// The checksum covers the whole segment, and a corrupt one often shows
	// first as garbage: the rest of it tells.
	if _, rerr := io.Copy(io.Discard, r); rerr != nil && (err == nil || errors.Is(rerr, backup.ErrCorrupt)) {
		return 0, rerr
	}
	if err != nil {
		return 0, fmt.Errorf("binlog segment %s/%s: %w", seg.Cluster, seg.Name, err)
	}
	return n, bw.Flush()
}

// errStopReplay stops reading a segment at the stop point.
var errStopReplay = errors.New("stop replaying")

// judge tells whether the transaction g, whose GTID event has timestamp
// at, is replayed, or whether the replay stops before it (done.stopped).
// Transactions the position reached holds (the backup's, or those of
// overlapping segments) are skipped.
func (p *replayPlan) judge(g gtid, at uint32, done *replayed) (bool, error) {
	if s := p.stopGTID; s != nil && done.pos.Contains(s.position()) {
		done.stopped = true
		return false, nil
	}
	if later, err := after(g, done.pos); err != nil || !later {
		return false, err
	}
	if !p.stopTime.IsZero() && !time.Unix(int64(at), 0).Before(p.stopTime) {
		done.stopped = true
		return false, nil
	}
	if s := p.stopGTID; s != nil && g.domain == s.domain && (g.seq > s.seq || g.seq == s.seq && g.server != s.server) {
		return false, fmt.Errorf("the archive holds no transaction %s: %s follows %s", s, g, done.pos)
	}
	done.pos, done.txns, done.last, done.lastTime = done.pos.Union(g.position()), done.txns+1, g, at
	return true, nil
}

// report logs how far the replay went.
func (p *replayPlan) report(done replayed) {
	log := slog.Default().With("cluster", p.cluster, "from", p.from.String(), "to", done.pos.String(), "transactions", done.txns)
	if done.txns > 0 {
		log = log.With("last", done.last.String(), "lastCommit", time.Unix(int64(done.lastTime), 0).UTC())
	}
	if !p.stopTime.IsZero() {
		log = log.With("stopTime", p.stopTime)
	}
	if p.stopGTID != nil {
		log = log.With("stopGTID", p.stopGTID.String())
	}
	switch {
	case done.stopped || p.stopGTID != nil && done.pos.Contains(p.stopGTID.position()):
		log.Info("replayed the binlog archive up to the stop point")
	case !p.stopTime.IsZero():
		log.Warn("the binlog archive ends before the stop time: replayed all of it")
	default:
		log.Info("replayed the binlog archive to its end")
	}
}

// positionText names a position in a message, the empty one too.
func positionText(pos mysql.GTIDSet) string {
	if pos.IsEmpty() {
		return "the empty position"
	}
	return pos.String()
}
