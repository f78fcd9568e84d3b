package mysql

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// sidKey names one sequence of MySQL GTIDs: a server uuid and, since MySQL
// 8.3, an optional tag.
type sidKey struct {
	uuid, tag string
}

// interval is the closed range [start, end] of transaction numbers.
type interval struct {
	start, end uint64
}

// parseMySQLSet parses "uuid:1-5:7,uuid2:tag:1-3".
func parseMySQLSet(s string) (GTIDSet, error) {
	raw := map[sidKey][]interval{}
	text := removeSpace(s)
	if text != "" {
		for _, elem := range strings.Split(text, ",") {
			if err := parseMySQLElem(elem, raw); err != nil {
				return GTIDSet{}, parseError(flavorMySQL, s, "%v", err)
			}
		}
	}
	out := GTIDSet{flavor: flavorMySQL, sids: map[sidKey][]interval{}}
	for k, ivs := range raw {
		out.sids[k] = normalize(ivs)
	}
	return out, nil
}

// parseMySQLElem parses "uuid[:tag]:interval[:interval...][:tag:interval...]"
// into raw.
func parseMySQLElem(elem string, raw map[sidKey][]interval) error {
	if elem == "" {
		return fmt.Errorf("empty element (a stray comma?)")
	}
	parts := strings.Split(elem, ":")
	uuid, err := parseUUID(parts[0])
	if err != nil {
		return err
	}
	key := sidKey{uuid: uuid}
	any, pendingTag := false, false // any interval yet; a tag waits for its first
	for _, p := range parts[1:] {
		if isTag(p) {
			if pendingTag {
				return fmt.Errorf("%q: %s has no interval", elem, describeKey(key))
			}
			key, pendingTag = sidKey{uuid: uuid, tag: strings.ToLower(p)}, true
			continue
		}
		iv, err := parseInterval(p)
		if err != nil {
			return fmt.Errorf("%q: %v", elem, err)
		}
		raw[key] = append(raw[key], iv)
		any, pendingTag = true, false
	}
	if pendingTag || !any {
		return fmt.Errorf("%q: %s has no interval", elem, describeKey(key))
	}
	return nil
}

func describeKey(k sidKey) string {
	if k.tag == "" {
		return "uuid " + k.uuid
	}
	return "tag " + k.tag
}

// parseUUID accepts the 8-4-4-4-12 hex form MySQL prints, in either case,
// and returns it in lower case.
func parseUUID(s string) (string, error) {
	bad := fmt.Errorf("%q is not a server uuid (8-4-4-4-12 hex digits)", s)
	if len(s) != 36 {
		return "", bad
	}
	for i, c := range s {
		dash := i == 8 || i == 13 || i == 18 || i == 23
		hex := ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
		if dash != (c == '-') || (!dash && !hex) {
			return "", bad
		}
	}
	return strings.ToLower(s), nil
}

// isTag: a GTID tag starts with a letter or underscore, an interval with a
// digit.
func isTag(p string) bool {
	if p == "" {
		return false
	}
	c := p[0]
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// parseInterval parses "n" or "a-b" with 1 <= a <= b < 2^63.
func parseInterval(p string) (interval, error) {
	lo, hi, isRange := strings.Cut(p, "-")
	start, err := parseGNO(lo)
	if err != nil {
		return interval{}, fmt.Errorf("interval %q: %v", p, err)
	}
	end := start
	if isRange {
		if end, err = parseGNO(hi); err != nil {
			return interval{}, fmt.Errorf("interval %q: %v", p, err)
		}
	}
	if end < start {
		return interval{}, fmt.Errorf("interval %q: end %d is before start %d", p, end, start)
	}
	return interval{start, end}, nil
}

func parseGNO(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%q is not a transaction number (1 to 2^63-1)", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("transaction numbers start at 1, not 0")
	}
	return n, nil
}

// normalize sorts intervals and merges overlapping and adjacent ones, so
// that a covered interval always lies within a single interval.
func normalize(ivs []interval) []interval {
	ivs = slices.Clone(ivs)
	slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.start, b.start) })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv.start <= out[n-1].end+1 {
			out[n-1].end = max(out[n-1].end, iv.end)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func sortedKeys(m map[sidKey][]interval) []sidKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b sidKey) int {
		return cmp.Or(cmp.Compare(a.uuid, b.uuid), cmp.Compare(a.tag, b.tag))
	})
}

func (s GTIDSet) mysqlString() string {
	var b strings.Builder
	prev := ""
	for _, k := range sortedKeys(s.sids) {
		if k.uuid != prev {
			if prev != "" {
				b.WriteByte(',')
			}
			b.WriteString(k.uuid)
			prev = k.uuid
		}
		if k.tag != "" {
			b.WriteString(":" + k.tag)
		}
		for _, iv := range s.sids[k] {
			b.WriteString(":" + formatInterval(iv))
		}
	}
	return b.String()
}

func formatInterval(iv interval) string {
	if iv.start == iv.end {
		return strconv.FormatUint(iv.start, 10)
	}
	return fmt.Sprintf("%d-%d", iv.start, iv.end)
}

func mysqlContains(s, o map[sidKey][]interval) bool {
	for k, oivs := range o {
		for _, oiv := range oivs {
			if !covered(s[k], oiv) {
				return false
			}
		}
	}
	return true
}

// covered reports whether iv lies within one of the normalized ivs.
func covered(ivs []interval, iv interval) bool {
	i, _ := slices.BinarySearchFunc(ivs, iv.start, func(x interval, start uint64) int {
		return cmp.Compare(x.end, start)
	})
	return i < len(ivs) && ivs[i].start <= iv.start && iv.end <= ivs[i].end
}

func mysqlUnion(s, o map[sidKey][]interval) map[sidKey][]interval {
	out := maps.Clone(s)
	for k, oivs := range o {
		out[k] = normalize(append(slices.Clone(out[k]), oivs...))
	}
	return out
}

func mysqlSubtract(s, o map[sidKey][]interval) map[sidKey][]interval {
	out := map[sidKey][]interval{}
	for k, sivs := range s {
		if rest := subtractIntervals(sivs, o[k]); len(rest) > 0 {
			out[k] = rest
		}
	}
	return out
}

// subtractIntervals is a minus b, both normalized.
func subtractIntervals(a, b []interval) []interval {
	var out []interval
	for _, iv := range a {
		cur := iv
		left := true // whether part of iv survives the cut after cur.start
		for _, cut := range b {
			if cut.end < cur.start || cut.start > cur.end {
				continue
			}
			if cut.start > cur.start {
				out = append(out, interval{cur.start, cut.start - 1})
			}
			if cut.end >= cur.end {
				left = false
				break
			}
			cur.start = cut.end + 1
		}
		if left {
			out = append(out, cur)
		}
	}
	return out
}
