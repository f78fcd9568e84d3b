package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/mysos-project/mysos/pkg/mysql"
)

func mustPos(t *testing.T, s string) mysql.GTIDSet {
	t.Helper()
	set, err := mysql.ParseGTIDSet("mariadb", s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// step is one transaction met by a replay and what judge must say.
type step struct {
	gtid    string
	at      uint32
	keep    bool
	stopped bool
	err     string
}

func runJudge(t *testing.T, p *replayPlan, steps []step) {
	t.Helper()
	done := replayed{pos: p.from}
	for _, s := range steps {
		g, err := parseGTID(s.gtid)
		if err != nil {
			t.Fatal(err)
		}
		keep, err := p.judge(g, s.at, &done)
		if s.err != "" {
			if err == nil || !strings.Contains(err.Error(), s.err) {
				t.Fatalf("%s: %v; want an error saying %q", s.gtid, err, s.err)
			}
			return
		}
		if err != nil || keep != s.keep || done.stopped != s.stopped {
			t.Fatalf("%s: keep %v, stopped %v, %v; want keep %v, stopped %v", s.gtid, keep, done.stopped, err, s.keep, s.stopped)
		}
		if done.stopped {
			return
		}
	}
}

// The replay skips what the position reached holds, refuses another
// history, and stops at the first transaction at or after the stop
// time's second, or after the stop GTID.
func TestReplayJudge(t *testing.T) {
	from := mustPos(t, "0-1-5")
	runJudge(t, &replayPlan{from: from}, []step{
		{gtid: "0-1-3", keep: false}, {gtid: "0-1-5", keep: false}, {gtid: "0-1-6", keep: true},
		{gtid: "0-1-6", keep: false}, // an overlapping segment's
		{gtid: "1-1-1", keep: true}, {gtid: "0-1-7", keep: true},
	})
	runJudge(t, &replayPlan{from: from}, []step{{gtid: "0-2-5", err: "the archive holds 0-2-5 where the position reached, 0-1-5, has 0-1-5"}})

	stopAt := time.Unix(100, 0)
	runJudge(t, &replayPlan{from: from, stopTime: stopAt}, []step{
		{gtid: "0-1-4", at: 200, keep: false}, // in the backup, whatever its time
		{gtid: "0-1-6", at: 98, keep: true}, {gtid: "0-1-7", at: 99, keep: true}, {gtid: "0-1-8", at: 100, stopped: true},
	})

	stop := gtid{domain: 0, server: 2, seq: 8}
	runJudge(t, &replayPlan{from: from, stopGTID: &stop}, []step{
		{gtid: "0-1-6", keep: true}, {gtid: "1-1-1", keep: true}, {gtid: "0-2-8", keep: true}, {gtid: "1-1-2", stopped: true},
	})
	runJudge(t, &replayPlan{from: from, stopGTID: &stop}, []step{
		{gtid: "0-1-6", keep: true}, {gtid: "0-1-8", err: "the archive holds no transaction 0-2-8: 0-1-8 follows 0-1-6"},
	})
}

func TestReplayStopGTID(t *testing.T) {
	for _, c := range []struct{ stop, err string }{
		{"0-1-12", ""},
		{"0-1-20", ""},
		{"0-1-5", ""}, // the backup's own position: nothing to replay
		{"0-1-21", "the archive of shop ends at 0-1-20, before 0-1-21"},
		{"0-1-3", "the backup is at GTID position 0-1-5, past 0-1-3: restore from an older backup"},
		{"0-2-5", "the histories diverged"},
		{"0-1", `GTID "0-1": want one MariaDB GTID`},
	} {
		p := &replayPlan{cluster: "shop", from: mustPos(t, "0-1-5"), end: mustPos(t, "0-1-20")}
		err := p.setStopGTID(c.stop)
		if c.err == "" && (err != nil || p.stopGTID.String() != c.stop) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("stop GTID %s: %v; want %q", c.stop, err, c.err)
		}
	}
}
