package mysql

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// mariaGTID is the last transaction of one MariaDB replication domain.
type mariaGTID struct {
	server uint32
	seq    uint64
}

// covers reports whether a position at g includes the transaction o: a later
// seq does (the server checks the history itself, with gtid_strict_mode),
// the same seq only if it is the same transaction, i.e. from the same server.
func (g mariaGTID) covers(o mariaGTID) bool {
	return g.seq > o.seq || (g.seq == o.seq && g.server == o.server)
}

// parseMariaDBPos parses "domain-server-seq[,domain-server-seq...]".
func parseMariaDBPos(s string) (GTIDSet, error) {
	out := GTIDSet{flavor: flavorMariaDB, domains: map[uint32]mariaGTID{}}
	text := removeSpace(s)
	if text == "" {
		return out, nil
	}
	for _, elem := range strings.Split(text, ",") {
		domain, g, err := parseMariaDBGTID(elem)
		if err != nil {
			return GTIDSet{}, parseError(flavorMariaDB, s, "%v", err)
		}
		if prev, dup := out.domains[domain]; dup {
			return GTIDSet{}, parseError(flavorMariaDB, s,
				"domain %d appears twice (%d-%d-%d and %s); a position holds one GTID per domain",
				domain, domain, prev.server, prev.seq, elem)
		}
		out.domains[domain] = g
	}
	return out, nil
}

// parseMariaDBGTID parses one "domain-server-seq".
func parseMariaDBGTID(elem string) (uint32, mariaGTID, error) {
	if elem == "" {
		return 0, mariaGTID{}, fmt.Errorf("empty element (a stray comma?)")
	}
	parts := strings.Split(elem, "-")
	if len(parts) != 3 {
		return 0, mariaGTID{}, fmt.Errorf("%q is not domain-server-seq", elem)
	}
	domain, err := strconv.ParseUint(parts[0], 10, 32)
	if err != nil {
		return 0, mariaGTID{}, fmt.Errorf("%q: domain %q is not a 32-bit unsigned number", elem, parts[0])
	}
	server, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return 0, mariaGTID{}, fmt.Errorf("%q: server id %q is not a 32-bit unsigned number", elem, parts[1])
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return 0, mariaGTID{}, fmt.Errorf("%q: sequence number %q is not a 64-bit unsigned number", elem, parts[2])
	}
	return uint32(domain), mariaGTID{server: uint32(server), seq: seq}, nil
}

func (s GTIDSet) mariadbString() string {
	parts := make([]string, 0, len(s.domains))
	for _, d := range slices.Sorted(maps.Keys(s.domains)) {
		g := s.domains[d]
		parts = append(parts, fmt.Sprintf("%d-%d-%d", d, g.server, g.seq))
	}
	return strings.Join(parts, ",")
}

func mariadbContains(s, o map[uint32]mariaGTID) bool {
	for d, og := range o {
		sg, ok := s[d]
		if !ok || !sg.covers(og) {
			return false
		}
	}
	return true
}

func mariadbUnion(s, o map[uint32]mariaGTID) map[uint32]mariaGTID {
	out := maps.Clone(s)
	for d, og := range o {
		sg, ok := out[d]
		if !ok || og.seq > sg.seq || (og.seq == sg.seq && og.server > sg.server) {
			out[d] = og
		}
	}
	return out
}

func mariadbSubtract(s, o map[uint32]mariaGTID) map[uint32]mariaGTID {
	out := map[uint32]mariaGTID{}
	for d, sg := range s {
		if og, ok := o[d]; !ok || !og.covers(sg) {
			out[d] = sg
		}
	}
	return out
}

// Domain returns the last transaction of one domain of a MariaDB position:
// its server id and sequence number; ok is false when the position has
// none in that domain (or is not a MariaDB position).
func (s GTIDSet) Domain(domain uint32) (server uint32, seq uint64, ok bool) {
	g, ok := s.domains[domain]
	return g.server, g.seq, ok
}
