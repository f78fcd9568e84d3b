package spec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Constructors for FieldError. They keep the wording of values uniform:
// strings are quoted and long ones shortened, so a message stays one
// readable line even when the offending value is a 1 MiB annotation.

func requiredErr(path, detail string) *FieldError {
	return &FieldError{Field: path, Type: ErrorTypeRequired, Detail: detail}
}

func invalidErr(path string, value any, detail string) *FieldError {
	return &FieldError{Field: path, Type: ErrorTypeInvalid, Value: showValue(value), Detail: detail}
}

func forbiddenErr(path string, value any, detail string) *FieldError {
	return &FieldError{Field: path, Type: ErrorTypeForbidden, Value: showValue(value), Detail: detail}
}

func tooLongErr(path string, value any, detail string) *FieldError {
	return &FieldError{Field: path, Type: ErrorTypeTooLong, Value: showValue(value), Detail: detail}
}

func notSupportedErr(path string, value any, accepted []string) *FieldError {
	quoted := make([]string, len(accepted))
	for i, a := range accepted {
		quoted[i] = strconv.Quote(a)
	}
	return &FieldError{Field: path, Type: ErrorTypeNotSupported, Value: showValue(value),
		Detail: "supported values: " + strings.Join(quoted, ", ")}
}

// maxShownValue is how much of a string value an error message repeats.
const maxShownValue = 80

// showValue renders a value for an error message; nil renders as nothing.
func showValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return quoteShort(v)
	case Quantity:
		return quoteShort(string(v))
	default:
		return fmt.Sprint(v)
	}
}

func quoteShort(s string) string {
	if len(s) <= maxShownValue {
		return strconv.Quote(s)
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// Field paths are built the way they are printed: spec.users[1].name,
// metadata.labels[team].

func childPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func keyPath(path, k string) string {
	return path + "[" + fieldKey(k) + "]"
}

// fieldKey renders a map key or an unknown field's name for a field path:
// as it is when it is short printable ASCII, else quoted with everything
// else escaped (\n, \u202e, the Cyrillic \u0435 that looks like 'e') and
// cut after maxShownValue bytes. A path is printed as is, so it must never
// carry a control character, hide a look-alike or run for a megabyte.
func fieldKey(k string) string {
	plain := len(k) <= maxShownValue && !strings.ContainsFunc(k, func(r rune) bool {
		return r <= ' ' || r > '~' || r == '[' || r == ']' || r == '"'
	})
	if plain {
		return k
	}
	if len(k) <= maxShownValue {
		return strconv.QuoteToASCII(k)
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return strconv.QuoteToASCII(k[:cut]) + fmt.Sprintf("... (%d bytes)", len(k))
}

// QuoteValue renders a string for an error message the way field errors
// show values: quoted, with control characters escaped, cut after 80 bytes.
func QuoteValue(s string) string { return quoteShort(s) }
