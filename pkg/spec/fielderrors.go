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
	return path + "[" + k + "]"
}
