package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// Timeouts of a Server.
const (
	// DialTimeout bounds connecting.
	DialTimeout = 5 * time.Second
	// IOTimeout bounds every socket read and write, so that a server that
	// vanished from the network is noticed even by a call whose context has
	// no deadline. It is longer than OpTimeout because one statement may
	// rightly take seconds: STOP SLAVE on a MariaDB semi-sync replica
	// connects to the source to end its dump thread and may wait
	// rpl_semi_sync_slave_kill_conn_timeout (5 s) for that; a 5 s read
	// timeout was seen to break it on a loaded machine.
	IOTimeout = 20 * time.Second
	// OpTimeout bounds one Server method when the caller's context has no
	// earlier deadline.
	OpTimeout = 15 * time.Second
	// WaitTimeout bounds WaitForGTID when the caller's context has no
	// deadline.
	WaitTimeout = 30 * time.Second
	// waitSlice is the longest single server-side GTID wait, well within
	// IOTimeout.
	waitSlice = 10 * time.Second
)

// errBadConn tells database/sql to drop a connection.
var errBadConn = driver.ErrBadConn

// Endpoint is where a server listens and the account Mysos uses there.
type Endpoint struct {
	Host     string
	Port     int
	Socket   string // when set, used instead of Host:Port
	User     string
	Password string
	// CA, when set, makes the connection use TLS, and only TLS: the server's
	// certificate must chain to one of these PEM certificates and name Host
	// (a DNS name or an IP address). A server without TLS is refused, never
	// talked to in plaintext. Not used with Socket (a unix socket is local).
	CA []byte
}

// addr is where ep points, for messages: host:port or the socket path.
func (ep Endpoint) addr() string {
	if ep.Socket != "" {
		return ep.Socket
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
}

// Server is a connection pool to one server, speaking its flavour. It is
// safe for concurrent use.
type Server struct {
	db     *sql.DB
	flavor Flavor
	addr   string
	// secrets are scrubbed from every error: the endpoint's own password
	// could otherwise come back in a server message.
	secret string
}

// Open prepares a pool for ep; it does no network I/O (Ping does). The pool
// is small (Mysos sends few statements), and parameters are never
// interpolated into the statement text on the client (interpolateParams
// off): Server builds its statements itself and quotes what it puts in them.
func Open(ep Endpoint, f Flavor) (*Server, error) {
	if f == nil {
		return nil, errors.New("mysql: Open with no flavor")
	}
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd = ep.User, ep.Password
	cfg.Net, cfg.Addr = "tcp", ep.addr()
	if ep.Socket != "" {
		cfg.Net = "unix"
	} else if ep.Host == "" || ep.Port <= 0 {
		return nil, fmt.Errorf("mysql: endpoint %s: want a socket or a host and port", ep.addr())
	}
	if len(ep.CA) > 0 && ep.Socket == "" {
		tc, err := TLSConfig(ep.CA, ep.Host)
		if err != nil {
			return nil, fmt.Errorf("mysql: endpoint %s: %w", ep.addr(), err)
		}
		cfg.TLS, cfg.AllowFallbackToPlaintext = tc, false
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = DialTimeout, IOTimeout, IOTimeout
	cfg.InterpolateParams = false
	cfg.Logger = driverLogger{addr: ep.addr()}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: endpoint %s: %w", ep.addr(), redact(err, []string{ep.Password}))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(time.Minute)
	return &Server{db: db, flavor: f, addr: ep.addr(), secret: ep.Password}, nil
}

// TLSConfig is the client side of a TLS connection to a Mysos server:
// TLS 1.2 or later, the server's certificate verified against caPEM (one
// or more PEM certificates) and serverName, the host the server was
// reached at (its certificate names it).
func TLSConfig(caPEM []byte, serverName string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the TLS CA holds no PEM certificate")
	}
	if serverName == "" {
		return nil, errors.New("TLS needs the server's host name to verify its certificate")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: serverName}, nil
}

// driverLogger sends the driver's own complaints (e.g. "connection reset by
// peer" when a server dies) to slog at debug level: the same failure also
// comes back as an error from the call that met it.
type driverLogger struct{ addr string }

func (l driverLogger) Print(v ...any) {
	slog.Debug("mysql driver", "server", l.addr, "msg", fmt.Sprint(v...))
}

// Close closes the pool.
func (s *Server) Close() error { return s.db.Close() }

// Flavor is the flavour the server was opened with.
func (s *Server) Flavor() Flavor { return s.flavor }

// DB is the underlying pool, for tests and one-off queries. Errors it
// returns are not scrubbed of passwords.
func (s *Server) DB() *sql.DB { return s.db }

// opContext bounds one operation by OpTimeout.
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, OpTimeout)
}

// fail wraps err for operation op, without any password.
func (s *Server) fail(op string, err error, secrets ...string) error {
	return fmt.Errorf("mysql %s: %s: %w", s.addr, op, redact(err, slices.Concat(secrets, []string{s.secret})))
}

// Ping checks that the server accepts the endpoint's account.
func (s *Server) Ping(ctx context.Context) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	if err := s.db.PingContext(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Exec runs one statement, for tests and one-offs. The statement is not
// part of the error, but a server message may quote it, so do not pass
// passwords here.
func (s *Server) Exec(ctx context.Context, query string, args ...any) error {
	ctx, cancel := opContext(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, query, args...); err != nil {
		return s.fail("exec "+stmtKind(query), err)
	}
	return nil
}

// run executes stmts in order on one connection and stops at the first
// error, which names the statement's kind but never its text.
func (s *Server) run(ctx context.Context, op string, secrets []string, stmts ...string) error {
	return s.withConn(ctx, op, func(c *sql.Conn) error {
		return s.runOn(ctx, c, op, secrets, stmts...)
	})
}

func (s *Server) runOn(ctx context.Context, c *sql.Conn, op string, secrets []string, stmts ...string) error {
	for _, stmt := range stmts {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			return s.fail(op+": "+stmtKind(stmt), err, secrets...)
		}
	}
	return nil
}

// withConn runs f on one connection of the pool, so that a sequence of
// statements shares a session.
func (s *Server) withConn(ctx context.Context, op string, f func(*sql.Conn) error) error {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	defer c.Close()
	return f(c)
}

// queryString selects one value; NULL reads as "".
func (s *Server) queryString(ctx context.Context, c *sql.Conn, query string) (string, error) {
	var v sql.NullString
	if err := c.QueryRowContext(ctx, query).Scan(&v); err != nil {
		return "", s.fail(stmtKind(query), err)
	}
	return v.String, nil
}

// querySet selects one GTID set.
func (s *Server) querySet(ctx context.Context, c *sql.Conn, query string) (GTIDSet, error) {
	v, err := s.queryString(ctx, c, query)
	if err != nil {
		return GTIDSet{}, err
	}
	set, err := s.flavor.ParseGTIDSet(v)
	if err != nil {
		return GTIDSet{}, fmt.Errorf("mysql %s: %s: %w", s.addr, stmtKind(query), err)
	}
	return set, nil
}

// GlobalStatus reads one status variable, e.g. Rpl_semi_sync_master_status.
func (s *Server) GlobalStatus(ctx context.Context, name string) (string, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	// SHOW cannot take a placeholder; LIKE's wildcards (_ in most names)
	// may match more rows, hence the exact comparison below.
	rows, err := s.db.QueryContext(ctx, "SHOW GLOBAL STATUS LIKE "+quoteString(name))
	if err != nil {
		return "", s.fail("show status", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return "", s.fail("show status", err)
		}
		if strings.EqualFold(n, name) {
			return v, nil
		}
	}
	if err := rows.Err(); err != nil {
		return "", s.fail("show status", err)
	}
	return "", fmt.Errorf("mysql %s: no status variable %s", s.addr, name)
}

// Databases lists the server's databases (SHOW DATABASES), the system
// schemas included.
func (s *Server) Databases(ctx context.Context) ([]string, error) {
	ctx, cancel := opContext(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return nil, s.fail("list databases", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, s.fail("list databases", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list databases", err)
	}
	return out, nil
}
