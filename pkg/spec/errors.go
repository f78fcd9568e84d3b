package spec

import (
	"fmt"
	"strings"
)

// ErrorType says what is wrong with a field.
type ErrorType string

// The kinds of field errors, worded as Kubernetes words them.
const (
	ErrorTypeRequired     ErrorType = "Required value"
	ErrorTypeInvalid      ErrorType = "Invalid value"
	ErrorTypeUnknown      ErrorType = "Unknown field"
	ErrorTypeWrongType    ErrorType = "Wrong type"
	ErrorTypeTooLong      ErrorType = "Too long"
	ErrorTypeNotSupported ErrorType = "Unsupported value"
	ErrorTypeForbidden    ErrorType = "Forbidden"
)

// FieldError is one problem with one field, named by its path
// (spec.resources.mem, spec.users[2].name).
type FieldError struct {
	Field  string    `json:"field"`
	Type   ErrorType `json:"type"`
	Value  string    `json:"value,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(string(e.Type))
	if e.Value != "" {
		fmt.Fprintf(&b, ": %s", e.Value)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// ErrorList collects every problem found, so one answer names them all.
type ErrorList []*FieldError

// Error joins the errors one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Err returns nil for an empty list, so callers can write `if err := l.Err(); err != nil`.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
