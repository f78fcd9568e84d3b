package executor

// This file follows MariaDB binary-log events, as the binlog archiver
// receives them and as a point-in-time restore reads them back from the
// archive: which event starts a transaction (its GTID event), which one
// ends it, and which belong to no transaction at all. Events stay raw
// bytes; only GTID and COMMIT/ROLLBACK query events are decoded.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/mysos-project/mysos/pkg/mysql"
)

// gtid is one MariaDB transaction's id, domain-server-seq.
type gtid struct {
	domain, server uint32
	seq            uint64
}

func (g gtid) String() string { return fmt.Sprintf("%d-%d-%d", g.domain, g.server, g.seq) }

// position is the replication position right after g in its domain.
func (g gtid) position() mysql.GTIDSet {
	set, err := mysql.ParseGTIDSet("mariadb", g.String())
	if err != nil {
		panic(err) // String always parses
	}
	return set
}

// parseGTID parses one "domain-server-seq".
func parseGTID(s string) (gtid, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) == 3 {
		d, derr := strconv.ParseUint(parts[0], 10, 32)
		srv, serr := strconv.ParseUint(parts[1], 10, 32)
		seq, qerr := strconv.ParseUint(parts[2], 10, 64)
		if derr == nil && serr == nil && qerr == nil {
			return gtid{domain: uint32(d), server: uint32(srv), seq: seq}, nil
		}
	}
	return gtid{}, fmt.Errorf("GTID %q: want one MariaDB GTID, domain-server-seq", s)
}

// after tells whether the transaction g comes after position pos in its
// domain, which then must not hold it; a transaction with pos's sequence
// number from another server means the histories diverged.
func after(g gtid, pos mysql.GTIDSet) (bool, error) {
	server, seq, ok := pos.Domain(g.domain)
	switch {
	case !ok || g.seq > seq:
		return true, nil
	case g.seq == seq && g.server != server:
		return false, fmt.Errorf("the archive holds %s where the position reached, %s, has %d-%d-%d: the histories diverged", g, pos, g.domain, server, seq)
	}
	return false, nil
}

// eventRole is what an event is to the transactions of a binary log.
type eventRole int

const (
	// outside: rotations, heartbeats, GTID lists, binlog checkpoints,
	// which describe the log file or the connection, not data.
	outside eventRole = iota
	formatDescription
	txnBegin // the GTID event that starts a transaction
	txnBody
	txnEnd // the event that ends a transaction
)

// Flags of a MariaDB GTID event.
const (
	flStandalone  = 1   // a statement without terminating COMMIT (DDL)
	flCompletedXA = 128 // an XA COMMIT or XA ROLLBACK statement alone
)

// txnScanner follows transactions through a stream of events.
type txnScanner struct {
	in         bool // a transaction has begun and not ended
	standalone bool // its GTID event says it has no terminating COMMIT
	gtid       gtid
	time       uint32 // its GTID event's timestamp: when its commit started
}

// scan tells ev's role and, for a GTID event, records its transaction.
func (s *txnScanner) scan(ev *replication.BinlogEvent) (eventRole, error) {
	switch ev.Header.EventType {
	case replication.FORMAT_DESCRIPTION_EVENT:
		s.in = false
		return formatDescription, nil
	case replication.MARIADB_GTID_EVENT:
		body, err := eventBody(ev)
		if err != nil {
			return outside, err
		}
		if len(body) < 13 {
			return outside, fmt.Errorf("a GTID event of %d bytes", len(body))
		}
		s.gtid = gtid{seq: binary.LittleEndian.Uint64(body), domain: binary.LittleEndian.Uint32(body[8:]), server: ev.Header.ServerID}
		s.in, s.standalone, s.time = true, body[12]&(flStandalone|flCompletedXA) != 0, ev.Header.Timestamp
		return txnBegin, nil
	}
	if !s.in || notData(ev.Header.EventType) {
		return outside, nil
	}
	end, err := s.ends(ev)
	if err != nil || !end {
		return txnBody, err
	}
	s.in = false
	return txnEnd, nil
}

// notData are the event types that never belong to a transaction.
func notData(t replication.EventType) bool {
	switch t {
	case replication.ROTATE_EVENT, replication.STOP_EVENT, replication.HEARTBEAT_EVENT, replication.HEARTBEAT_LOG_EVENT_V2,
		replication.MARIADB_GTID_LIST_EVENT, replication.MARIADB_BINLOG_CHECKPOINT_EVENT,
		replication.MARIADB_START_ENCRYPTION_EVENT, replication.INCIDENT_EVENT:
		return true
	}
	return false
}

// ends tells whether ev ends the transaction in progress: its XID (an
// InnoDB commit), an XA PREPARE, a COMMIT or ROLLBACK query (other
// engines), or the one statement of a standalone group (DDL, XA COMMIT).
func (s *txnScanner) ends(ev *replication.BinlogEvent) (bool, error) {
	switch ev.Header.EventType {
	case replication.XID_EVENT, replication.XA_PREPARE_LOG_EVENT:
		return true, nil
	case replication.MARIADB_QUERY_COMPRESSED_EVENT:
		return s.standalone, nil
	case replication.QUERY_EVENT:
		if s.standalone {
			return true, nil
		}
		body, err := eventBody(ev)
		if err != nil {
			return false, err
		}
		q := strings.ToUpper(strings.TrimSpace(string(queryText(body))))
		return q == "COMMIT" || q == "ROLLBACK", nil
	}
	return false, nil
}

// eventBody is an event's data after its header, without its checksum,
// as the parser leaves it in raw mode.
func eventBody(ev *replication.BinlogEvent) ([]byte, error) {
	g, ok := ev.Event.(*replication.GenericEvent)
	if !ok {
		return nil, fmt.Errorf("%s event decoded as %T; want raw", ev.Header.EventType, ev.Event)
	}
	return g.Data, nil
}

// queryText is the statement of a Query event's body (nil if it is too
// short): after the 13-byte post-header, the status variables and the
// NUL-terminated default database.
func queryText(body []byte) []byte {
	const postHeader = 13
	if len(body) < postHeader {
		return nil
	}
	start := postHeader + int(binary.LittleEndian.Uint16(body[11:])) + int(body[8]) + 1
	if start > len(body) {
		return nil
	}
	return body[start:]
}

// readBinlog reads a binary-log file (the magic, then events) and hands
// each event to fn, checking the events' own checksums.
func readBinlog(r io.Reader, fn func(*replication.BinlogEvent) error) error {
	magic := make([]byte, len(replication.BinLogFileHeader))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, replication.BinLogFileHeader) {
		return errors.New("not a binary-log file: it lacks the magic number")
	}
	p := replication.NewBinlogParser()
	p.SetFlavor("mariadb")
	p.SetRawMode(true)
	p.SetVerifyChecksum(true)
	return p.ParseReader(r, fn)
}
