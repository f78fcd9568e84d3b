package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Selector is an equality-based label selector as kubectl's -l takes it:
// "team=shop,tier!=cache,critical,!legacy". Set-based forms ("in", "notin")
// are not supported. The zero Selector selects everything.
type Selector struct {
	reqs []requirement
}

type selectorOp int

// The operators, in the order String lists them for one key.
const (
	opExists selectorOp = iota
	opNotExists
	opEquals
	opNotEquals
)

type requirement struct {
	key   string
	op    selectorOp
	value string
}

// ParseSelector parses a comma-separated list of requirements, all of which
// must hold: k=v and k==v (label k is v), k!=v (k is absent or not v), k
// (k is present) and !k (k is absent). Spaces around keys, operators and
// values are ignored. The empty string selects everything.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{}, nil
	}
	var sel Selector
	for term := range strings.SplitSeq(s, ",") {
		r, err := parseRequirement(strings.TrimSpace(term))
		if err != nil {
			return Selector{}, fmt.Errorf("invalid selector %q: %w", s, err)
		}
		sel.reqs = append(sel.reqs, r)
	}
	slices.SortFunc(sel.reqs, compareRequirements)
	sel.reqs = slices.Compact(sel.reqs)
	return sel, nil
}

// MustParseSelector is ParseSelector for constants and tests; it panics on
// an invalid selector.
func MustParseSelector(s string) Selector {
	sel, err := ParseSelector(s)
	if err != nil {
		panic(err)
	}
	return sel
}

func parseRequirement(term string) (requirement, error) {
	if term == "" {
		return requirement{}, fmt.Errorf("empty requirement; separate requirements with single commas")
	}
	if k, ok := strings.CutPrefix(term, "!"); ok {
		return newRequirement(k, opNotExists, "")
	}
	if strings.ContainsAny(term, "()") {
		return requirement{}, fmt.Errorf("%q: only equality-based requirements (k=v, k!=v, k, !k) are supported", term)
	}
	for _, o := range []struct {
		text string
		op   selectorOp
	}{{"!=", opNotEquals}, {"==", opEquals}, {"=", opEquals}} {
		if k, v, ok := strings.Cut(term, o.text); ok {
			return newRequirement(k, o.op, v)
		}
	}
	return newRequirement(term, opExists, "")
}

func newRequirement(k string, op selectorOp, v string) (requirement, error) {
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if k == "" {
		return requirement{}, fmt.Errorf("a requirement has no label key")
	}
	if msg := labelKeyProblem(k); msg != "" {
		return requirement{}, fmt.Errorf("key %s: %s", quoteShort(k), msg)
	}
	if msg := labelValueProblem(v); msg != "" {
		return requirement{}, fmt.Errorf("value %s for key %q: %s", quoteShort(v), k, msg)
	}
	return requirement{key: k, op: op, value: v}, nil
}

func compareRequirements(a, b requirement) int {
	return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.op, b.op), strings.Compare(a.value, b.value))
}

// Empty reports whether the selector selects everything.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Matches reports whether labels satisfy every requirement. As in
// Kubernetes, k!=v matches objects without label k.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		v, ok := labels[r.key]
		switch r.op {
		case opExists:
			if !ok {
				return false
			}
		case opNotExists:
			if ok {
				return false
			}
		case opEquals:
			if !ok || v != r.value {
				return false
			}
		case opNotEquals:
			if ok && v == r.value {
				return false
			}
		}
	}
	return true
}

// String returns the canonical form: requirements sorted by key, "=" for
// equality, no spaces. Parsing it gives the same selector, so it can be sent
// to the API server as a query parameter.
func (s Selector) String() string {
	terms := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		switch r.op {
		case opExists:
			terms[i] = r.key
		case opNotExists:
			terms[i] = "!" + r.key
		case opEquals:
			terms[i] = r.key + "=" + r.value
		case opNotEquals:
			terms[i] = r.key + "!=" + r.value
		}
	}
	return strings.Join(terms, ",")
}
