package mysql

import (
	"fmt"
	"strings"
	"testing"
)

// Benchmarks of GTID set comparison (docs/benchmarks.md, "Hot paths"). Every
// reconcile pass parses each instance's executed set (Server.Status, and
// again for the lag metric) and compares replicas with the primary
// (Contains, Subtract for errant transactions); the binlog archiver and
// point-in-time replay advance a MariaDB position by Union once per
// transaction.

// benchGTIDCase is a primary's executed set and a replica's that it
// contains, in one flavour's syntax.
type benchGTIDCase struct {
	name, flavor     string
	primary, replica string
}

// benchMySQLSet is n source uuids, each with intervals intervals of 900
// transactions and gaps between them (purged or filtered transactions, as
// long-lived MySQL 8 servers print them); the replica lags by lag
// transactions on the last uuid. Uuids are joined as MySQL prints them,
// ",\n".
func benchMySQLSet(n, intervals int, lag uint64) string {
	elems := make([]string, n)
	for u := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "%08x-71ca-11e1-9e33-c80aa94295%02d", 0x3e11fa47+u, u)
		for j := range intervals {
			end := uint64(1000*j + 900)
			if u == n-1 && j == intervals-1 {
				end -= lag
			}
			fmt.Fprintf(&b, ":%d-%d", 1000*j+1, end)
		}
		elems[u] = b.String()
	}
	return strings.Join(elems, ",\n")
}

var benchGTIDCases = []benchGTIDCase{
	// MariaDB: one domain-server-seq per domain; three domains (the
	// default domain and two that took writes through other primaries).
	{"mariadb-3domains", flavorMariaDB, "0-1-1843022,1-2-55012,2-3-998", "0-1-1842990,1-2-55012,2-3-998"},
	// MySQL 8, the common case: one source, one interval.
	{"mysql-1uuid", flavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-1843022", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-1842990"},
	// MySQL 8 after several failovers and purges: 3 sources of 100
	// intervals each.
	{"mysql-3uuids-300intervals", flavorMySQL, benchMySQLSet(3, 100, 0), benchMySQLSet(3, 100, 32)},
}

func benchParse(b *testing.B, flavor, s string) GTIDSet {
	b.Helper()
	set, err := ParseGTIDSet(flavor, s)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkGTIDParse: ParseGTIDSet of a primary's executed set.
func BenchmarkGTIDParse(b *testing.B) {
	for _, c := range benchGTIDCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseGTIDSet(c.flavor, c.primary); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGTIDContains: does the primary hold every transaction of the
// replica (true), and the replica every one of the primary (false, it lags)?
func BenchmarkGTIDContains(b *testing.B) {
	for _, c := range benchGTIDCases {
		b.Run(c.name, func(b *testing.B) {
			p, r := benchParse(b, c.flavor, c.primary), benchParse(b, c.flavor, c.replica)
			b.ReportAllocs()
			for b.Loop() {
				if !p.Contains(r) || r.Contains(p) {
					b.Fatal("wrong containment")
				}
			}
		})
	}
}

// BenchmarkGTIDSubtract: the replica's errant transactions (none), as the
// failover code computes them.
func BenchmarkGTIDSubtract(b *testing.B) {
	for _, c := range benchGTIDCases {
		b.Run(c.name, func(b *testing.B) {
			p, r := benchParse(b, c.flavor, c.primary), benchParse(b, c.flavor, c.replica)
			b.ReportAllocs()
			for b.Loop() {
				if !r.Subtract(p).IsEmpty() {
					b.Fatal("errant transactions where there are none")
				}
			}
		})
	}
}

// BenchmarkGTIDUnion: the union of the two sets (what a replica's executed
// set plus gtid_slave_pos, or a dump's start plus its binlog, amounts to).
func BenchmarkGTIDUnion(b *testing.B) {
	for _, c := range benchGTIDCases {
		b.Run(c.name, func(b *testing.B) {
			p, r := benchParse(b, c.flavor, c.primary), benchParse(b, c.flavor, c.replica)
			b.ReportAllocs()
			for b.Loop() {
				if u := r.Union(p); u.IsEmpty() {
					b.Fatal("empty union")
				}
			}
		})
	}
}

// BenchmarkGTIDCompare: one replica's check in a reconcile pass from the
// text the servers report: parse both sets, then Comparable and Contains.
func BenchmarkGTIDCompare(b *testing.B) {
	for _, c := range benchGTIDCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := ParseGTIDSet(c.flavor, c.primary)
				if err != nil {
					b.Fatal(err)
				}
				r, err := ParseGTIDSet(c.flavor, c.replica)
				if err != nil {
					b.Fatal(err)
				}
				if !Comparable(p, r) || !p.Contains(r) {
					b.Fatal("wrong comparison")
				}
			}
		})
	}
}

// BenchmarkGTIDAdvanceMariaDB: the binlog archiver's and replay's step per
// transaction, a 3-domain position advanced by one GTID parsed from its
// text.
func BenchmarkGTIDAdvanceMariaDB(b *testing.B) {
	pos := benchParse(b, flavorMariaDB, benchGTIDCases[0].primary)
	seq := uint64(1843022)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		g, err := ParseGTIDSet(flavorMariaDB, fmt.Sprintf("%d-%d-%d", 0, 1, seq))
		if err != nil {
			b.Fatal(err)
		}
		pos = pos.Union(g)
	}
	if _, s, _ := pos.Domain(0); s != seq {
		b.Fatalf("position at %d; want %d", s, seq)
	}
}
