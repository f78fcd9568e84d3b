package router

import (
	"context"
	"database/sql"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mysos-project/mysos/internal/testutil"
	"github.com/mysos-project/mysos/pkg/mysql"
	"github.com/mysos-project/mysos/pkg/mysql/mysqltest"
)

// Benchmarks of the router against a direct connection (docs/router.md),
// with a real MariaDB on loopback (mysqltest). Like every Go benchmark they
// run only with -bench.

// openAdmin opens a pool to endpoint as Mysos' admin.
func openAdmin(b *testing.B, in *mysqltest.Instance, endpoint string) *sql.DB {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	srv, err := mysql.Open(mysql.Endpoint{Host: host, Port: p, User: mysqltest.AdminUser, Password: in.AdminPassword}, mysql.MariaDB)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	db := srv.DB()
	if err := db.Ping(); err != nil {
		b.Fatal(err)
	}
	return db
}

// routedServer is one MariaDB and a router whose read-write port leads to it.
func routedServer(b *testing.B) (in *mysqltest.Instance, direct, routed string) {
	in = mysqltest.Start(b, mysqltest.Options{})
	h := startRouter(b, 0)
	direct = "127.0.0.1:" + strconv.Itoa(in.Port)
	h.publish(Record{Primary: direct, Epoch: 1})
	return in, direct, h.rw
}

// BenchmarkRouterLatency: one client sends a statement at a steady 1,000 a
// second, directly and through the router, in alternating blocks of 500 (so
// both see the same machine); each op is 1,000 statements per path. It
// reports each path's median and p99 and what the router adds to the
// median. "select1" is the cheapest round trip there is (SELECT 1, ~45 µs
// on loopback); "insert" an autocommit INSERT, a write as applications
// send them.
func BenchmarkRouterLatency(b *testing.B) {
	in, direct, routed := routedServer(b)
	paths := map[string]*sql.DB{"direct": openAdmin(b, in, direct), "routed": openAdmin(b, in, routed)}
	for _, db := range paths {
		db.SetMaxOpenConns(1)
	}
	if _, err := paths["direct"].Exec("CREATE DATABASE bench"); err != nil {
		b.Fatal(err)
	}
	if _, err := paths["direct"].Exec("CREATE TABLE bench.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"); err != nil {
		b.Fatal(err)
	}
	for _, stmt := range []struct{ name, query string }{{"select1", "SELECT 1"}, {"insert", "INSERT INTO bench.t (v) VALUES (1)"}} {
		b.Run(stmt.name, func(b *testing.B) {
			lat := map[string][]time.Duration{}
			for b.Loop() {
				for range 2 {
					for _, name := range []string{"direct", "routed"} {
						lat[name] = append(lat[name], paced(b, paths[name], stmt.query, 500, time.Millisecond)...)
					}
				}
			}
			b.StopTimer()
			d50, r50 := testutil.Percentile(lat["direct"], 50), testutil.Percentile(lat["routed"], 50)
			b.ReportMetric(us(d50), "direct-p50-us")
			b.ReportMetric(us(testutil.Percentile(lat["direct"], 99)), "direct-p99-us")
			b.ReportMetric(us(r50), "routed-p50-us")
			b.ReportMetric(us(testutil.Percentile(lat["routed"], 99)), "routed-p99-us")
			b.ReportMetric(us(r50)-us(d50), "added-p50-us")
			b.ReportMetric((us(r50)-us(d50))/us(d50)*100, "added-p50-%")
		})
	}
}

// paced sends query n times, one every interval, and returns the latencies.
func paced(b *testing.B, db *sql.DB, query string, n int, interval time.Duration) []time.Duration {
	out := make([]time.Duration, 0, n)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for range n {
		<-tick.C
		start := time.Now()
		rows, err := db.QueryContext(context.Background(), query)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Close()
		}
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

// BenchmarkRouterThroughput: eight clients send SELECT 1 as fast as they
// can, directly or through the router; each op is one query.
func BenchmarkRouterThroughput(b *testing.B) {
	in, direct, routed := routedServer(b)
	for _, path := range []struct{ name, endpoint string }{{"direct", direct}, {"routed", routed}} {
		b.Run(path.name, func(b *testing.B) {
			db := openAdmin(b, in, path.endpoint)
			db.SetMaxOpenConns(8)
			b.SetParallelism(4) // 4 × GOMAXPROCS (2 here) = 8 clients
			b.RunParallel(func(pb *testing.PB) {
				var one int
				for pb.Next() {
					if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
