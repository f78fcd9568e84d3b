package spec

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParseQuantityValid(t *testing.T) {
	tests := []struct {
		in    string
		milli int64
		value int64
		mib   float64
	}{
		{"0", 0, 0, 0},
		{"2", 2000, 2, 2.0 / (1 << 20)},
		{"0.5", 500, 1, 1.0 / (1 << 20)},
		{"1.5", 1500, 2, 2.0 / (1 << 20)},
		{"500m", 500, 1, 1.0 / (1 << 20)},
		{"1m", 1, 1, 1.0 / (1 << 20)},
		{"0.0001", 1, 1, 1.0 / (1 << 20)}, // rounds up, never down to 0
		{"1k", 1_000_000, 1000, 1000.0 / (1 << 20)},
		{"1M", 1_000_000_000, 1_000_000, 1_000_000.0 / (1 << 20)},
		{"1Ki", 1_024_000, 1024, 1.0 / 1024},
		{"512Mi", 512 << 20 * 1000, 512 << 20, 512},
		{"1.5Gi", 1536 << 20 * 1000, 1536 << 20, 1536},
		{"2Gi", 2 << 30 * 1000, 2 << 30, 2048},
		{"0.1Gi", 107374182400, 107374183, 102.40000057220459}, // 107374182.4 bytes rounds up
		{"1Ti", 1 << 40 * 1000, 1 << 40, 1 << 20},
		{"16Ti", 16 << 40 * 1000, 16 << 40, 16 << 20},
		{"1Pi", 1 << 50 * 1000, 1 << 50, 1 << 30},
		{"1G", 1e12, 1e9, 1e9 / (1 << 20)},
		{"007", 7000, 7, 7.0 / (1 << 20)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := ParseQuantity(tt.in)
			if err != nil {
				t.Fatalf("ParseQuantity(%q): %v", tt.in, err)
			}
			if q.String() != tt.in {
				t.Errorf("ParseQuantity(%q) = %q; the text must be kept", tt.in, q)
			}
			if m, err := q.MilliValue(); err != nil || m != tt.milli {
				t.Errorf("MilliValue = %d, %v; want %d", m, err, tt.milli)
			}
			if v, err := q.Value(); err != nil || v != tt.value {
				t.Errorf("Value = %d, %v; want %d", v, err, tt.value)
			}
			if f, err := q.MiB(); err != nil || f != tt.mib {
				t.Errorf("MiB = %v, %v; want %v", f, err, tt.mib)
			}
		})
	}
}

func TestParseQuantityExact(t *testing.T) {
	// 0.1 has no exact float64; the value must still be exactly 1/10.
	v, err := Quantity("0.1").Parse()
	if err != nil || v.String() != "1/10" {
		t.Fatalf("Parse(0.1) = %v, %v; want 1/10", v, err)
	}
	// Largest value that fits: 2^63-1 bytes.
	if v, err := Quantity("9223372036854775807").Value(); err != nil || v != math.MaxInt64 {
		t.Fatalf("Value(MaxInt64) = %d, %v", v, err)
	}
	// Fits as bytes but not as thousandths.
	if _, err := Quantity("7Ei").MilliValue(); err == nil {
		t.Fatal("MilliValue(7Ei) must report overflow")
	}
}

func TestParseQuantityInvalid(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"", "quantity is empty: use a number with an optional suffix such as 500m, 512Mi or 2Gi"},
		{"12Q", `invalid quantity "12Q": use a number with an optional suffix such as 500m, 512Mi or 2Gi`},
		{"-1", "must not be negative"},
		{"-500m", "must not be negative"},
		{"1 Gi", "must not contain spaces"},
		{" 1", "must not contain spaces"},
		{"1\t", "must not contain spaces"},
		{"1K", "use a number"},    // kilo is "k"
		{"1mi", "use a number"},   // suffixes are case-sensitive
		{"1e3", "use a number"},   // no exponent forms
		{"1.", "use a number"},    // a fraction needs digits
		{".5", "use a number"},    // so does the whole part
		{"1.2.3", "use a number"}, // one point at most
		{"Gi", "use a number"},
		{"+1", "use a number"},
		{"1/2", "use a number"},
		{"0x10", "use a number"},
		{"1GiB", "use a number"},
		{"9223372036854775808", "too large"},
		{"8Ei", "too large"},
		{"10E", "too large"},
		{strings.Repeat("1", 65), "longer than 64 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseQuantity(tt.in)
			if err == nil {
				t.Fatalf("ParseQuantity(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseQuantity(%q) = %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
			if _, err := Quantity(tt.in).Value(); err == nil {
				t.Errorf("Value(%q) succeeded", tt.in)
			}
		})
	}
}

func TestQuantityIsZero(t *testing.T) {
	if !Quantity("").IsZero() || Quantity("0").IsZero() {
		t.Fatal(`IsZero: "" is unset, "0" is set`)
	}
}

func TestQuantityUnmarshalJSON(t *testing.T) {
	tests := []struct {
		json string
		want Quantity
	}{
		{`"512Mi"`, "512Mi"},
		{`2`, "2"},
		{`0.5`, "0.5"},
		{`1.50`, "1.50"},
		{`1e3`, "1000"},
		{`2.5E-1`, "0.25"},
		{`1.5e+1`, "15"},
		{`0.001e3`, "1"},
		{`-1`, "-1"}, // kept for validation to report
	}
	for _, tt := range tests {
		var q Quantity
		if err := json.Unmarshal([]byte(tt.json), &q); err != nil || q != tt.want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", tt.json, q, err, tt.want)
		}
	}
	for _, bad := range []string{`true`, `[1]`, `{}`, `1e999`} {
		var q Quantity
		if err := json.Unmarshal([]byte(bad), &q); err == nil {
			t.Errorf("Unmarshal(%s) succeeded with %q", bad, q)
		}
	}
	q := Quantity("1")
	if err := json.Unmarshal([]byte(`null`), &q); err != nil || q != "1" {
		t.Errorf("null must leave the quantity alone, got %q, %v", q, err)
	}
}

func TestQuantityCmp(t *testing.T) {
	if c, err := Quantity("1Gi").Cmp("1024Mi"); err != nil || c != 0 {
		t.Errorf("1Gi vs 1024Mi = %d, %v", c, err)
	}
	if c, err := Quantity("1G").Cmp("1Gi"); err != nil || c != -1 {
		t.Errorf("1G vs 1Gi = %d, %v", c, err)
	}
	if _, err := Quantity("x").Cmp("1"); err == nil {
		t.Error("Cmp with an invalid quantity must fail")
	}
}
