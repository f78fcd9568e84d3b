package mysql

import (
	"fmt"
	"strings"
)

// GTIDSet is a set of transactions in one of the two GTID syntaxes. It is a
// value: operations return new sets and never change their operands. The
// zero GTIDSet is the empty set of either flavour.
//
// The two syntaxes describe different things. A MySQL set lists every
// transaction by (source uuid, number) intervals, so containment is exact. A
// MariaDB value is a replication position: per domain, the last GTID
// (domain-server-seq) applied, and everything before it in that domain is
// implied. Two MariaDB positions with the same domain and seq but different
// server ids are different transactions: that is divergence, and neither
// position contains the other.
//
// Sets of different flavours identify disjoint transactions: a MySQL set
// contains a MariaDB set only if the latter is empty, and so on. Only
// Union cannot express a mix; it panics on one, since that is a bug in the
// caller.
type GTIDSet struct {
	flavor  string               // "mariadb" or "mysql"; "" only when empty
	domains map[uint32]mariaGTID // MariaDB: domain → last GTID in it
	sids    map[sidKey][]interval
}

// ParseGTIDSet parses s in the syntax of flavor ("mariadb" or "mysql").
// MariaDB: "0-1-100,1-2-5", one domain-server-seq per domain. MySQL:
// "uuid:1-5:7,uuid2:1-3", with whitespace and newlines anywhere, as MySQL
// prints long sets; tagged GTIDs (uuid:tag:1-5, MySQL 8.3 and later) are
// accepted too. The empty string is the empty set.
func ParseGTIDSet(flavor, s string) (GTIDSet, error) {
	switch flavor {
	case flavorMariaDB:
		return parseMariaDBPos(s)
	case flavorMySQL:
		return parseMySQLSet(s)
	}
	return GTIDSet{}, fmt.Errorf("GTID set %q: unknown flavor %q (want %q or %q)", s, flavor, flavorMariaDB, flavorMySQL)
}

// ParseSameFlavor parses text in the syntax s was parsed in: for code that
// handles positions of any flavour without importing this package (the
// backup catalog).
func (s GTIDSet) ParseSameFlavor(text string) (GTIDSet, error) { return ParseGTIDSet(s.flavor, text) }

// Flavor is the syntax the set was parsed in, "" for the zero set.
func (s GTIDSet) Flavor() string { return s.flavor }

// IsEmpty reports whether s holds no transaction.
func (s GTIDSet) IsEmpty() bool { return len(s.domains) == 0 && len(s.sids) == 0 }

// String is the canonical form: MariaDB sorted by domain; MySQL sorted by
// uuid (untagged intervals first, then tags in order) with merged intervals,
// on one line.
func (s GTIDSet) String() string {
	if s.flavor == flavorMySQL {
		return s.mysqlString()
	}
	return s.mariadbString()
}

// Contains reports whether every transaction of o is in s. MariaDB: per
// domain of o, s's seq is greater, or equal with the same server id.
func (s GTIDSet) Contains(o GTIDSet) bool {
	if o.IsEmpty() {
		return true
	}
	if s.flavor != o.flavor {
		return false
	}
	if s.flavor == flavorMySQL {
		return mysqlContains(s.sids, o.sids)
	}
	return mariadbContains(s.domains, o.domains)
}

// Equal reports whether s and o hold the same transactions.
func (s GTIDSet) Equal(o GTIDSet) bool {
	if s.IsEmpty() || o.IsEmpty() {
		return s.IsEmpty() && o.IsEmpty()
	}
	return s.flavor == o.flavor && s.String() == o.String()
}

// Union is every transaction in s or o. MariaDB: per domain the later
// position. A position cannot express two diverged histories: on a tie
// between different servers the union is the one with the higher server id,
// an arbitrary but order-independent choice, and contains only that one.
func (s GTIDSet) Union(o GTIDSet) GTIDSet {
	switch {
	case o.IsEmpty():
		return s
	case s.IsEmpty():
		return o
	case s.flavor != o.flavor:
		panic(fmt.Sprintf("mysql: union of a %s and a %s GTID set", s.flavor, o.flavor))
	case s.flavor == flavorMySQL:
		return GTIDSet{flavor: flavorMySQL, sids: mysqlUnion(s.sids, o.sids)}
	}
	return GTIDSet{flavor: flavorMariaDB, domains: mariadbUnion(s.domains, o.domains)}
}

// Subtract is what s has that o lacks: errant transactions when s is a
// replica and o its source. MariaDB: the domains where s's position is not
// contained in o's (o lacks the domain, has a lower seq, or the same seq from
// another server).
func (s GTIDSet) Subtract(o GTIDSet) GTIDSet {
	if s.IsEmpty() || o.IsEmpty() || s.flavor != o.flavor {
		return s
	}
	if s.flavor == flavorMySQL {
		return GTIDSet{flavor: flavorMySQL, sids: mysqlSubtract(s.sids, o.sids)}
	}
	return GTIDSet{flavor: flavorMariaDB, domains: mariadbSubtract(s.domains, o.domains)}
}

// Comparable reports whether one of a and b contains the other; when neither
// does, the servers they came from diverged and one must be re-cloned.
func Comparable(a, b GTIDSet) bool { return a.Contains(b) || b.Contains(a) }

// parseError formats every GTID parse error the same way.
func parseError(flavor, s, format string, args ...any) error {
	return fmt.Errorf("%s GTID set %q: %s", flavor, abbreviate(s), fmt.Sprintf(format, args...))
}

// abbreviate keeps error messages readable for sets with many uuids.
func abbreviate(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// removeSpace drops the whitespace MySQL puts after each comma.
func removeSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
}
