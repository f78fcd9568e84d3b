package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Quantity is an amount of CPU, memory or disk written in Kubernetes'
// notation: a plain decimal number ("2", "0.5") with an optional suffix,
// either milli ("500m"), decimal SI (k M G T P E) or binary (Ki Mi Gi Ti Pi Ei).
//
// It is kept as the text the user wrote, so that `get -o yaml` shows what
// was applied; Parse gives the exact value when a number is needed. Exponent
// forms ("1e3") are not part of the notation.
type Quantity string

// quantitySyntax is appended to every syntax error so that the message says
// what would have been accepted.
const quantitySyntax = "use a number with an optional suffix such as 500m, 512Mi or 2Gi"

// maxQuantityLen bounds the text so that parsing stays cheap; no sensible
// quantity needs more digits than this.
const maxQuantityLen = 64

// quantitySuffixes maps each accepted suffix to its multiplier. "K" is
// deliberately absent, as in Kubernetes: the decimal kilo is "k".
var quantitySuffixes = map[string]*big.Rat{
	"":   big.NewRat(1, 1),
	"m":  big.NewRat(1, 1000),
	"k":  pow(10, 3),
	"M":  pow(10, 6),
	"G":  pow(10, 9),
	"T":  pow(10, 12),
	"P":  pow(10, 15),
	"E":  pow(10, 18),
	"Ki": pow(2, 10),
	"Mi": pow(2, 20),
	"Gi": pow(2, 30),
	"Ti": pow(2, 40),
	"Pi": pow(2, 50),
	"Ei": pow(2, 60),
}

func pow(base, exp int64) *big.Rat {
	n := new(big.Int).Exp(big.NewInt(base), big.NewInt(exp), nil)
	return new(big.Rat).SetInt(n)
}

var maxInt64 = big.NewInt(math.MaxInt64)

// ParseQuantity checks s and returns it as a Quantity. The value must be
// non-negative and, rounded up to a whole unit, fit in an int64, because
// Value and MilliValue hand out int64s.
func ParseQuantity(s string) (Quantity, error) {
	if _, err := Quantity(s).Parse(); err != nil {
		return "", err
	}
	return Quantity(s), nil
}

// MustParseQuantity is ParseQuantity for constants and tests; it panics on
// an invalid quantity.
func MustParseQuantity(s string) Quantity {
	q, err := ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

// IsZero reports whether the quantity is unset. "0" is set: it is an
// explicit (if unusual) amount, and defaults must not replace it.
func (q Quantity) IsZero() bool { return q == "" }

// String returns the quantity as written.
func (q Quantity) String() string { return string(q) }

// Parse returns the exact value of q in base units (cores, bytes). A big.Rat
// avoids float rounding: "0.1" is exactly 1/10 and "1.5Gi" exactly
// 1610612736.
func (q Quantity) Parse() (*big.Rat, error) {
	s := string(q)
	if reason := quantityTextProblem(s); reason != "" {
		return nil, &QuantityError{Value: s, Reason: reason}
	}
	number, suffix := splitQuantity(s)
	mult, ok := quantitySuffixes[suffix]
	if !ok || !isDecimal(number) {
		return nil, &QuantityError{Value: s, Reason: quantitySyntax}
	}
	v, _ := new(big.Rat).SetString(number) // isDecimal guarantees it parses
	v.Mul(v, mult)
	if ceilRat(v).Cmp(maxInt64) > 0 {
		return nil, &QuantityError{Value: s, Reason: "too large: values must stay below 2^63 (8Ei)"}
	}
	return v, nil
}

// QuantityError explains why a quantity is not valid. Reason alone is
// what validation puts next to the field path.
type QuantityError struct {
	Value  string
	Reason string
}

func (e *QuantityError) Error() string {
	if e.Value == "" {
		return "quantity is empty: " + e.Reason
	}
	return fmt.Sprintf("invalid quantity %s: %s", quoteShort(e.Value), e.Reason)
}

// quantityTextProblem catches the malformed inputs for which a specific
// message helps more than the generic syntax reminder.
func quantityTextProblem(s string) string {
	switch {
	case s == "":
		return quantitySyntax
	case len(s) > maxQuantityLen:
		return fmt.Sprintf("longer than %d characters; %s", maxQuantityLen, quantitySyntax)
	case strings.ContainsFunc(s, isSpace):
		return "must not contain spaces; " + quantitySyntax
	case s[0] == '-':
		return "must not be negative"
	}
	return ""
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// splitQuantity separates the leading number from the suffix.
func splitQuantity(s string) (number, suffix string) {
	i := strings.IndexFunc(s, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// isDecimal accepts digits with an optional fraction: "2", "0.5". A bare
// point ("5.", ".5") is refused to keep one spelling per value.
func isDecimal(s string) bool {
	whole, frac, hasPoint := strings.Cut(s, ".")
	return allDigits(whole) && (!hasPoint || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ceilRat rounds v up to an integer.
func ceilRat(v *big.Rat) *big.Int {
	q, r := new(big.Int).QuoRem(v.Num(), v.Denom(), new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// Value returns q in whole base units, rounded up: memory and disk in bytes.
// Rounding up means a reservation is never smaller than what was asked for.
func (q Quantity) Value() (int64, error) {
	v, err := q.Parse()
	if err != nil {
		return 0, err
	}
	return ceilRat(v).Int64(), nil // Parse guarantees it fits
}

// MilliValue returns q in thousandths, rounded up: CPUs in millicores.
func (q Quantity) MilliValue() (int64, error) {
	v, err := q.Parse()
	if err != nil {
		return 0, err
	}
	m := ceilRat(new(big.Rat).Mul(v, big.NewRat(1000, 1)))
	if !m.IsInt64() {
		return 0, fmt.Errorf("quantity %q is too large to count in thousandths", string(q))
	}
	return m.Int64(), nil
}

// MiB returns q in mebibytes, the unit Mesos uses for mem and disk (it calls
// them MB). It starts from the rounded-up byte count so that it agrees with
// Value.
func (q Quantity) MiB() (float64, error) {
	b, err := q.Value()
	if err != nil {
		return 0, err
	}
	f, _ := new(big.Rat).SetFrac64(b, 1<<20).Float64()
	return f, nil
}

// Cmp compares the values of q and other: -1, 0 or +1. Both must parse.
func (q Quantity) Cmp(other Quantity) (int, error) {
	a, err := q.Parse()
	if err != nil {
		return 0, err
	}
	b, err := other.Parse()
	if err != nil {
		return 0, err
	}
	return a.Cmp(b), nil
}

// UnmarshalJSON accepts a string ("512Mi") or a bare number (2, 0.5): YAML
// users write `cpus: 2` and expect it to work. Numbers keep their decimal
// text; exponent forms are expanded so the result is valid notation.
func (q *Quantity) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	s, err := numberToDecimal(string(data))
	if err != nil {
		return err
	}
	*q = Quantity(s)
	return nil
}

// maxDecimalExponent bounds exponent expansion: beyond it the number is far
// outside any valid quantity, and expanding it would only waste memory.
const maxDecimalExponent = 40

var errNotNumber = errors.New(`a quantity must be a string such as "512Mi" or a number`)

// numberToDecimal rewrites a JSON number as plain decimal text: "1e3" becomes
// "1000" and "2.5E-1" becomes "0.25"; numbers without an exponent are
// returned unchanged so "1.50" stays "1.50".
func numberToDecimal(num string) (string, error) {
	if !json.Valid([]byte(num)) || num == "" || (num[0] != '-' && (num[0] < '0' || num[0] > '9')) {
		return "", errNotNumber
	}
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(num), "e")
	if !hasExp {
		return num, nil
	}
	exp, err := strconv.Atoi(expText)
	if err != nil || exp > maxDecimalExponent || exp < -maxDecimalExponent {
		return "", fmt.Errorf("number %s is out of range", num)
	}
	sign := ""
	if mantissa[0] == '-' {
		sign, mantissa = "-", mantissa[1:]
	}
	return sign + shiftPoint(mantissa, exp), nil
}

// shiftPoint moves the decimal point of a plain decimal by exp places and
// trims redundant zeros.
func shiftPoint(mantissa string, exp int) string {
	whole, frac, _ := strings.Cut(mantissa, ".")
	digits := whole + frac
	point := len(whole) + exp
	switch {
	case point <= 0:
		whole, frac = "0", strings.Repeat("0", -point)+digits
	case point >= len(digits):
		whole, frac = digits+strings.Repeat("0", point-len(digits)), ""
	default:
		whole, frac = digits[:point], digits[point:]
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		whole = "0"
	}
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}
