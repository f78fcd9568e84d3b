package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Status is what Mysos reads from a server to decide its role.
type Status struct {
	ReadOnly bool
	// GTIDExecuted is every transaction the server's data holds (see
	// Server.GTIDExecuted).
	GTIDExecuted GTIDSet
	Replica      *ReplicaStatus // nil when not configured as a replica
	Version      string
	ServerID     uint32
	// TLSCA is the server's ssl_ca: the CA file its TLS trusts, a path on
	// its host; "" when it has none. A replica verifies its source with it.
	TLSCA string
	// Counters are the server's own status variables Mysos shows as
	// metrics, by name (Threads_connected, Questions, ...).
	Counters map[string]float64
}

// CounterNames are the status variables Status reads into Counters; MariaDB
// and MySQL name them alike.
var CounterNames = []string{
	"Threads_connected", "Threads_running", "Questions", "Slow_queries", "Aborted_connects",
	"Innodb_buffer_pool_pages_total", "Innodb_buffer_pool_pages_data", "Innodb_buffer_pool_pages_dirty",
	"Innodb_buffer_pool_read_requests", "Innodb_buffer_pool_reads",
}

// ReplicaStatus is the part of SHOW SLAVE/REPLICA STATUS Mysos uses.
type ReplicaStatus struct {
	SourceHost string
	SourcePort int
	// IORunning and SQLRunning are true for "Yes" only: an IO thread
	// "Connecting" to its source replicates nothing.
	IORunning, SQLRunning bool
	// IOThread is the IO thread's raw state: "Yes", "Connecting" (it
	// will fetch again as soon as the source answers) or "No" (stopped).
	IOThread      string
	IOState       string
	LastIOErrno   int
	LastIOError   string
	LastSQLError  string
	SecondsBehind *int64 // nil when NULL (a thread is not running)
	// RetrievedGTID is what the IO thread fetched (MariaDB: Gtid_IO_Pos;
	// MySQL: Retrieved_Gtid_Set). Once the IO thread is stopped, waiting
	// for it tells when the replica has applied all it got.
	RetrievedGTID GTIDSet
	// TLS is how the replica connects to its source (Master_SSL_Allowed,
	// Master_SSL_Verify_Server_Cert and Master_SSL_CA_File; Source_* in
	// MySQL).
	TLS       bool
	TLSVerify bool
	TLSCAFile string
}

// dialect is what Server needs from a flavour beyond Flavor. Both built-in
// flavours implement it; for another Flavor (a test fake) Server falls back
// to SHOW REPLICA STATUS and no replication position apart from the
// executed set.
type dialect interface {
	replicaStatusQuery() string
	// slavePosQuery selects where replication resumes when that differs
	// from the executed set (MariaDB's gtid_slave_pos), or is "".
	slavePosQuery() string
}

func (s *Server) dialect() dialect {
	if d, ok := s.flavor.(dialect); ok {
		return d
	}
	return genericDialect{}
}

type genericDialect struct{}

func (genericDialect) replicaStatusQuery() string { return "SHOW REPLICA STATUS" }
func (genericDialect) slavePosQuery() string      { return "" }

// Status reads the server's state. Each system variable is read by its own
// query: MariaDB was seen to return a wrong @@read_only when it shared a
// SELECT with a table read.
func (s *Server) Status(ctx context.Context) (Status, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	var st Status
	err := s.withConn(ctx, "status", func(c *sql.Conn) error {
		var err error
		if st.ReadOnly, err = s.queryBool(ctx, c, "SELECT @@GLOBAL.read_only"); err != nil {
			return err
		}
		if st.Version, err = s.queryString(ctx, c, "SELECT @@GLOBAL.version"); err != nil {
			return err
		}
		if st.ServerID, err = s.queryServerID(ctx, c); err != nil {
			return err
		}
		if st.TLSCA, err = s.queryString(ctx, c, "SELECT @@GLOBAL.ssl_ca"); err != nil {
			return err
		}
		if st.GTIDExecuted, err = s.executed(ctx, c); err != nil {
			return err
		}
		if st.Replica, _, err = s.replica(ctx, c); err != nil {
			return err
		}
		st.Counters, err = s.counters(ctx, c)
		return err
	})
	return st, err
}

// counters reads CounterNames in one statement.
func (s *Server) counters(ctx context.Context, c *sql.Conn) (map[string]float64, error) {
	q := "SHOW GLOBAL STATUS WHERE Variable_name IN ('" + strings.Join(CounterNames, "','") + "')"
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, s.fail("status counters", err)
	}
	defer rows.Close()
	out := map[string]float64{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, s.fail("status counters", err)
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("status counters", err)
	}
	return out, nil
}

// GTIDExecuted is every transaction the server's data holds: the flavour's
// GTIDExecutedQuery, plus, on MariaDB, gtid_slave_pos. The latter matters
// for a clone whose position was set with SetGTIDPosition: its binary log is
// new and empty until it applies a transaction, yet its data holds
// everything up to that position.
func (s *Server) GTIDExecuted(ctx context.Context) (GTIDSet, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	var set GTIDSet
	err := s.withConn(ctx, "executed GTIDs", func(c *sql.Conn) error {
		var err error
		set, err = s.executed(ctx, c)
		return err
	})
	return set, err
}

func (s *Server) executed(ctx context.Context, c *sql.Conn) (GTIDSet, error) {
	set, err := s.querySet(ctx, c, s.flavor.GTIDExecutedQuery())
	if err != nil {
		return GTIDSet{}, err
	}
	q := s.dialect().slavePosQuery()
	if q == "" {
		return set, nil
	}
	pos, err := s.querySet(ctx, c, q)
	if err != nil {
		return GTIDSet{}, err
	}
	return set.Union(pos), nil
}

func (s *Server) queryBool(ctx context.Context, c *sql.Conn, query string) (bool, error) {
	v, err := s.queryString(ctx, c, query)
	if err != nil {
		return false, err
	}
	switch v {
	case "1", "ON":
		return true, nil
	case "0", "OFF":
		return false, nil
	}
	return false, fmt.Errorf("mysql %s: %s: %q is not a boolean", s.addr, stmtKind(query), v)
}

func (s *Server) queryServerID(ctx context.Context, c *sql.Conn) (uint32, error) {
	const q = "SELECT @@GLOBAL.server_id"
	v, err := s.queryString(ctx, c, q)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("mysql %s: server_id %q: %v", s.addr, v, err)
	}
	return uint32(id), nil
}

// Column names of SHOW SLAVE/REPLICA STATUS. They differ between flavours
// and versions (MySQL renamed Slave_* and Master_* in 8.0.22; MariaDB
// accepts SHOW REPLICA STATUS but keeps the old names), so each field is
// looked up by any of its names.
var (
	colSourceHost = []string{"Source_Host", "Master_Host"}
	colSourcePort = []string{"Source_Port", "Master_Port"}
	colIORunning  = []string{"Replica_IO_Running", "Slave_IO_Running"}
	colSQLRunning = []string{"Replica_SQL_Running", "Slave_SQL_Running"}
	colIOState    = []string{"Replica_IO_State", "Slave_IO_State"}
	colIOError    = []string{"Last_IO_Error"}
	colIOErrno    = []string{"Last_IO_Errno"}
	colSQLError   = []string{"Last_SQL_Error"}
	colBehind     = []string{"Seconds_Behind_Source", "Seconds_Behind_Master"}
	colRetrieved  = []string{"Gtid_IO_Pos", "Retrieved_Gtid_Set"}
	colSSL        = []string{"Source_SSL_Allowed", "Master_SSL_Allowed"}
	colSSLVerify  = []string{"Source_SSL_Verify_Server_Cert", "Master_SSL_Verify_Server_Cert"}
	colSSLCA      = []string{"Source_SSL_CA_File", "Master_SSL_CA_File"}
)

// replicaRow is one row of SHOW SLAVE/REPLICA STATUS by column name; a NULL
// is absent.
type replicaRow map[string]string

// get returns the value of the first of names present.
func (r replicaRow) get(names []string) (string, bool) {
	for _, n := range names {
		if v, ok := r[n]; ok {
			return v, true
		}
	}
	return "", false
}

// replica reads the replica status, and the raw IO thread state ("Yes",
// "Connecting", "No"). With several replication connections (MariaDB
// multi-source) only the first row is read; Mysos configures one.
func (s *Server) replica(ctx context.Context, c *sql.Conn) (*ReplicaStatus, string, error) {
	q := s.dialect().replicaStatusQuery()
	row, cols, err := s.readRow(ctx, c, q)
	if err != nil || row == nil {
		return nil, "", err
	}
	for _, names := range [][]string{colSourceHost, colSourcePort, colIORunning, colSQLRunning} {
		if _, ok := cols.get(names); !ok {
			return nil, "", fmt.Errorf("mysql %s: %s has no column %s", s.addr, q, names[0])
		}
	}
	if host, _ := row.get(colSourceHost); host == "" {
		return nil, "", nil
	}
	return s.parseReplica(row)
}

func (s *Server) parseReplica(row replicaRow) (*ReplicaStatus, string, error) {
	r := &ReplicaStatus{}
	r.SourceHost, _ = row.get(colSourceHost)
	port, _ := row.get(colSourcePort)
	r.SourcePort, _ = strconv.Atoi(port)
	io, _ := row.get(colIORunning)
	sqlThread, _ := row.get(colSQLRunning)
	r.IORunning, r.SQLRunning = io == "Yes", sqlThread == "Yes"
	r.IOThread = io
	if v, ok := row.get(colIOErrno); ok {
		r.LastIOErrno, _ = strconv.Atoi(v)
	}
	r.IOState, _ = row.get(colIOState)
	r.LastIOError, _ = row.get(colIOError)
	r.LastSQLError, _ = row.get(colSQLError)
	if v, ok := row.get(colBehind); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("mysql %s: seconds behind %q: %v", s.addr, v, err)
		}
		r.SecondsBehind = &n
	}
	retrieved, _ := row.get(colRetrieved)
	set, err := s.flavor.ParseGTIDSet(retrieved)
	if err != nil {
		return nil, "", fmt.Errorf("mysql %s: retrieved GTIDs: %w", s.addr, err)
	}
	r.RetrievedGTID = set
	ssl, _ := row.get(colSSL)
	verify, _ := row.get(colSSLVerify)
	r.TLS, r.TLSVerify = ssl == "Yes", verify == "Yes"
	r.TLSCAFile, _ = row.get(colSSLCA)
	return r, io, nil
}

// readRow reads the first row of query by column name, nil when there is
// none; cols holds every column name, NULL or not.
func (s *Server) readRow(ctx context.Context, c *sql.Conn, query string) (row, cols replicaRow, err error) {
	rows, err := c.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, s.fail(query, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, nil, s.fail(query, err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, nil, s.fail(query, err)
		}
		return nil, nil, nil
	}
	vals := make([]sql.NullString, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, nil, s.fail(query, err)
	}
	row, cols = replicaRow{}, replicaRow{}
	for i, n := range names {
		cols[n] = ""
		if vals[i].Valid {
			row[n] = vals[i].String
		}
	}
	return row, cols, nil
}
