package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The walker checks a generic JSON tree against a Go type by reflection and
// returns a cleaned copy that json.Unmarshal will accept: unknown fields
// and wrongly typed values are dropped and reported, quantities written as
// numbers become strings, timestamps become UTC.
//
// Empty maps and lists are dropped too, so that `labels: {}` and no labels
// decode to the same object; otherwise an object would change when it is
// encoded (omitempty drops the empty map) and decoded again.

var (
	clusterType  = reflect.TypeFor[MySQLCluster]()
	timeType     = reflect.TypeFor[time.Time]()
	quantityType = reflect.TypeFor[Quantity]()
)

type walker struct {
	errs ErrorList
}

func (w *walker) fail(path string, v any, expected string) {
	w.errs = append(w.errs, wrongTypeErr(path, v, expected))
}

// walk returns the cleaned value and whether to keep it. Nulls are dropped:
// null means unset.
func (w *walker) walk(path string, v any, t reflect.Type) (any, bool) {
	switch {
	case v == nil:
		return nil, false
	case t == timeType:
		return w.timestamp(path, v)
	case t == quantityType:
		return w.quantity(path, v)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(path, v, t.Elem())
	case reflect.Struct:
		return w.object(path, v, t)
	case reflect.Map:
		return w.mapping(path, v, t)
	case reflect.Slice:
		return w.list(path, v, t.Elem())
	case reflect.String:
		return w.str(path, v)
	case reflect.Bool:
		return w.boolean(path, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.integer(path, v, t.Bits())
	}
	w.errs = append(w.errs, &FieldError{Field: path, Type: ErrorTypeInvalid,
		Detail: fmt.Sprintf("internal error: the decoder does not handle %s; please report this", t)})
	return nil, false
}

func (w *walker) object(path string, v any, t reflect.Type) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		w.fail(path, v, "an object")
		return nil, false
	}
	fields := fieldsOf(t)
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		f, known := fields.byName[k]
		if !known {
			w.errs = append(w.errs, unknownFieldErr(childPath(path, fieldKey(k)), k, fields.names))
			continue
		}
		if cv, keep := w.walk(childPath(path, k), m[k], f.typ); keep {
			out[k] = cv
		}
	}
	return out, true // kept even when empty: `backup: {}` is a backup section
}

func (w *walker) mapping(path string, v any, t reflect.Type) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		w.fail(path, v, "an object")
		return nil, false
	}
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		cv, _ := w.walk(keyPath(path, k), m[k], t.Elem())
		out[k] = cv // a null value stays: it decodes as the zero value
	}
	return out, len(out) > 0
}

func (w *walker) list(path string, v any, elem reflect.Type) (any, bool) {
	l, ok := v.([]any)
	if !ok {
		w.fail(path, v, "a list")
		return nil, false
	}
	out := make([]any, len(l))
	for i, e := range l {
		out[i], _ = w.walk(indexPath(path, i), e, elem) // nil keeps later indices in place
	}
	return out, len(out) > 0
}

func (w *walker) str(path string, v any) (any, bool) {
	s, ok := v.(string)
	if !ok {
		w.fail(path, v, "a string")
		return nil, false
	}
	return s, true
}

func (w *walker) boolean(path string, v any) (any, bool) {
	b, ok := v.(bool)
	if !ok {
		w.fail(path, v, "true or false")
		return nil, false
	}
	return b, true
}

// integer accepts only whole numbers that fit the field: 1.5 is refused
// rather than truncated, and "3" rather than guessed at.
func (w *walker) integer(path string, v any, bits int) (any, bool) {
	n, ok := v.(json.Number)
	if !ok {
		w.fail(path, v, "an integer")
		return nil, false
	}
	if _, err := strconv.ParseInt(string(n), 10, bits); err != nil {
		if errors.Is(err, strconv.ErrRange) {
			lo, hi := -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1
			w.errs = append(w.errs, invalidErr(path, n, fmt.Sprintf("out of range: must be between %d and %d", lo, hi)))
		} else {
			w.fail(path, v, "an integer")
		}
		return nil, false
	}
	return n, true
}

func (w *walker) quantity(path string, v any) (any, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		s, err := numberToDecimal(string(v))
		if err != nil {
			w.errs = append(w.errs, invalidErr(path, string(v), err.Error()+"; "+quantitySyntax))
			return nil, false
		}
		return s, true
	}
	w.fail(path, v, "a quantity such as 500m, 512Mi or 2Gi")
	return nil, false
}

// timestamp accepts RFC 3339 text and normalises it to UTC, as Kubernetes
// does; the instant is kept, and equal instants compare equal afterwards.
func (w *walker) timestamp(path string, v any) (any, bool) {
	const expected = "a timestamp in RFC 3339 form such as 2024-05-01T12:00:00Z"
	s, ok := v.(string)
	if !ok {
		w.fail(path, v, expected)
		return nil, false
	}
	var t time.Time
	if err := t.UnmarshalJSON([]byte(strconv.Quote(s))); err != nil {
		w.fail(path, v, expected)
		return nil, false
	}
	out, err := t.UTC().MarshalJSON()
	if err != nil { // a year pushed outside 0..9999 by the time zone
		w.errs = append(w.errs, invalidErr(path, s, "out of range: the year must be between 0000 and 9999 in UTC"))
		return nil, false
	}
	return json.RawMessage(out), true
}

// wrongTypeErr names what was found and what was expected, with a hint for
// the classic YAML traps: unquoted 10.10 is the number 10.1, unquoted yes is
// true, and quoted "3" is not a number.
func wrongTypeErr(path string, v any, expected string) *FieldError {
	e := &FieldError{Field: path, Type: ErrorTypeWrongType, Detail: "expected " + expected}
	switch v := v.(type) {
	case string:
		e.Value = quoteShort(v)
		if _, err := strconv.ParseFloat(v, 64); err == nil && expected == "an integer" {
			e.Detail += "; write it without quotes"
		}
		if (v == "true" || v == "false") && expected == "true or false" {
			e.Detail += "; write it without quotes"
		}
	case json.Number:
		e.Value = v.String()
		if expected == "a string" {
			e.Detail += "; put the value in quotes, or YAML reads it as a number (10.10 becomes 10.1)"
		}
	case bool:
		e.Value = strconv.FormatBool(v)
		if expected == "a string" {
			e.Detail += "; put the value in quotes, or YAML reads it as a boolean (yes, no, on and off become true or false)"
		}
	default:
		e.Detail += ", found " + kindOf(v)
	}
	return e
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// unknownFieldErr suggests the closest known field when it is close enough
// to be a typo, and lists the known fields otherwise.
func unknownFieldErr(path, name string, known []string) *FieldError {
	e := &FieldError{Field: path, Type: ErrorTypeUnknown}
	if s := closest(name, known); s != "" {
		e.Detail = fmt.Sprintf("did you mean %q?", s)
	} else {
		e.Detail = "known fields are " + strings.Join(known, ", ")
	}
	return e
}

// closest returns the known name most like name, or "" when none is like
// it: at most two edits, and fewer than a third of the letters, so that
// "replica" finds "replicas" but "db" does not find "uid". A name that
// merely extends a known one ("memory" for "mem") also counts.
func closest(name string, known []string) string {
	if len(name) > 64 {
		return "" // no field name is this long; spare the quadratic work
	}
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, k := range known {
		kl := strings.ToLower(k)
		d := editDistance(lower, kl)
		if len(kl) >= 3 && strings.HasPrefix(lower, kl) {
			d = min(d, 1)
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	longest := max(len(name), len(best))
	if bestDist < 0 || bestDist > 2 || bestDist*3 > longest {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance in bytes (field
// names are ASCII): Levenshtein plus adjacent transpositions, so "nmae" is
// one edit from "name".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// structFields is what the walker needs of a struct: its JSON field names
// (case-sensitive, unlike encoding/json, so `Replicas` is reported) and
// their types.
type structFields struct {
	byName map[string]fieldInfo
	names  []string // in declaration order, for "known fields are ..."
}

type fieldInfo struct {
	typ reflect.Type
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: map[string]fieldInfo{}}
	for sf := range t.Fields() {
		if !sf.IsExported() || sf.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f.byName[name] = fieldInfo{typ: sf.Type}
		f.names = append(f.names, name)
	}
	actual, _ := fieldCache.LoadOrStore(t, f)
	return actual.(*structFields)
}
