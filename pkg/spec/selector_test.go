package spec

import (
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in        string
		canonical string
	}{
		{"", ""},
		{"   ", ""},
		{"team=shop", "team=shop"},
		{"team==shop", "team=shop"},
		{"team!=shop", "team!=shop"},
		{"team", "team"},
		{"!team", "!team"},
		{" tier = db , team=shop ", "team=shop,tier=db"},
		{"team=", "team="},
		{"example.com/team=shop,example.com/team=shop", "example.com/team=shop"},
		{"b,!a,a=1,a!=2", "!a,a=1,a!=2,b"},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.in)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.in, err)
			continue
		}
		if got := sel.String(); got != tt.canonical {
			t.Errorf("ParseSelector(%q).String() = %q; want %q", tt.in, got, tt.canonical)
		}
		again, err := ParseSelector(sel.String())
		if err != nil || again.String() != sel.String() {
			t.Errorf("canonical form %q does not parse back: %v", sel, err)
		}
		if sel.Empty() != (tt.canonical == "") {
			t.Errorf("ParseSelector(%q).Empty() = %v", tt.in, sel.Empty())
		}
	}
}

func TestParseSelectorInvalid(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=b,", "empty requirement"},
		{",a", "empty requirement"},
		{"=b", "no label key"},
		{"!", "no label key"},
		{"bad key=x", `key "bad key"`},
		{"a=b c", `value "b c"`},
		{"a=b=c", `value "b=c"`},
		{"env in (a,b)", "only equality-based"},
		{"a=" + strings.Repeat("v", 64), "at most 63"},
		{"Example.com/a=b", "DNS subdomain"},
	}
	for _, tt := range tests {
		_, err := ParseSelector(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSelector(%q) = %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"team": "shop", "tier": "db", "empty": ""}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"team=shop", true},
		{"team==shop", true},
		{"team=billing", false},
		{"team!=billing", true},
		{"team!=shop", false},
		{"missing!=x", true}, // absent labels satisfy !=, as in Kubernetes
		{"missing=", false},
		{"empty=", true},
		{"team", true},
		{"missing", false},
		{"!missing", true},
		{"!team", false},
		{"team=shop,tier=db", true},
		{"team=shop,tier=cache", false},
	}
	for _, tt := range tests {
		sel := MustParseSelector(tt.sel)
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q.Matches(%v) = %v", tt.sel, labels, got)
		}
	}
	if !MustParseSelector("!a").Matches(nil) || MustParseSelector("a").Matches(nil) {
		t.Error("nil labels: only absence requirements hold")
	}
	var zero Selector
	if !zero.Empty() || !zero.Matches(nil) || zero.String() != "" {
		t.Error("the zero Selector selects everything")
	}
}
