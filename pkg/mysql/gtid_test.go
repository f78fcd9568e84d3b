package mysql

import (
	"strings"
	"testing"
)

const (
	u1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	u2 = "ad2c1b9c-0000-4000-8000-000000000002"
)

func mustParse(t *testing.T, flavor, s string) GTIDSet {
	t.Helper()
	set, err := ParseGTIDSet(flavor, s)
	if err != nil {
		t.Fatalf("ParseGTIDSet(%q, %q): %v", flavor, s, err)
	}
	return set
}

func TestParseGTIDSetCanonical(t *testing.T) {
	for _, tc := range []struct {
		flavor, in, want string
	}{
		{"mariadb", "", ""},
		{"mariadb", " \n", ""},
		{"mariadb", "0-1-100", "0-1-100"},
		{"mariadb", "1-2-5, 0-1-100", "0-1-100,1-2-5"},
		{"mariadb", "10-1-1,2-1-1", "2-1-1,10-1-1"},
		{"mariadb", "4294967295-4294967295-18446744073709551615", "4294967295-4294967295-18446744073709551615"},
		{"mysql", "", ""},
		{"mysql", u1 + ":1-5", u1 + ":1-5"},
		{"mysql", u1 + ":7", u1 + ":7"},
		{"mysql", u1 + ":1-5:6:7", u1 + ":1-7"},
		{"mysql", u1 + ":3-4:1-2", u1 + ":1-4"},
		{"mysql", u1 + ":1-5:3-9:12", u1 + ":1-9:12"},
		{"mysql", u1 + ":1-3:1-3", u1 + ":1-3"},
		// As MySQL prints a long @@gtid_executed, upper case uuids, unsorted.
		{"mysql", strings.ToUpper(u2) + ":1-3,\n" + strings.ToUpper(u1) + ":1-5:7", u1 + ":1-5:7," + u2 + ":1-3"},
		{"mysql", u1 + ":1,\n" + u1 + ":2", u1 + ":1-2"},
		// Tags (MySQL 8.3+): untagged intervals first, then tags in order.
		{"mysql", u1 + ":beta:5:alpha:1-2:4", u1 + ":alpha:1-2:4:beta:5"},
		{"mysql", u1 + ":Tag:1," + u1 + ":1-3", u1 + ":1-3:tag:1"},
		{"mysql", u1 + ":9223372036854775807", u1 + ":9223372036854775807"},
	} {
		got, err := ParseGTIDSet(tc.flavor, tc.in)
		if err != nil {
			t.Errorf("ParseGTIDSet(%s, %q): %v", tc.flavor, tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("ParseGTIDSet(%s, %q) = %q, want %q", tc.flavor, tc.in, got, tc.want)
		}
		if got.IsEmpty() != (tc.want == "") {
			t.Errorf("ParseGTIDSet(%s, %q).IsEmpty() = %v", tc.flavor, tc.in, got.IsEmpty())
		}
		// The canonical form parses to the same set.
		if again := mustParse(t, tc.flavor, got.String()); !again.Equal(got) {
			t.Errorf("%q does not round-trip: %q", got, again)
		}
	}
}

func TestParseGTIDSetErrors(t *testing.T) {
	for _, tc := range []struct {
		flavor, in, want string
	}{
		{"mariadb", "0-1", `"0-1" is not domain-server-seq`},
		{"mariadb", "0-1-2-3", `"0-1-2-3" is not domain-server-seq`},
		{"mariadb", "-1-1-1", `is not domain-server-seq`},
		{"mariadb", "x-1-1", `domain "x" is not a 32-bit unsigned number`},
		{"mariadb", "4294967296-1-1", `domain "4294967296" is not a 32-bit unsigned number`},
		{"mariadb", "0-y-1", `server id "y"`},
		{"mariadb", "0-1-z", `sequence number "z" is not a 64-bit unsigned number`},
		{"mariadb", "0-1-5,0-2-6", `domain 0 appears twice (0-1-5 and 0-2-6)`},
		{"mariadb", "0-1-5,", `empty element`},
		{"mariadb", u1 + ":1-5", `is not domain-server-seq`},
		{"mysql", u1, `uuid ` + u1 + ` has no interval`},
		{"mysql", u1 + ":0", `transaction numbers start at 1, not 0`},
		{"mysql", u1 + ":5-3", `interval "5-3": end 3 is before start 5`},
		{"mysql", u1 + ":1-", `interval "1-": "" is not a transaction number`},
		{"mysql", u1 + ":1-x", `"x" is not a transaction number`},
		{"mysql", u1 + ":9223372036854775808", `is not a transaction number (1 to 2^63-1)`},
		{"mysql", u1 + ":tag", `tag tag has no interval`},
		{"mysql", u1 + ":tag:x:1", `tag tag has no interval`},
		{"mysql", "nonsense:1", `"nonsense" is not a server uuid`},
		{"mysql", "3e11fa47x71ca-11e1-9e33-c80aa9429562:1", `is not a server uuid`},
		{"mysql", "3e11fa47-71ca-11e1-9e33-c80aa942956g:1", `is not a server uuid`},
		{"mysql", u1 + ":1,," + u2 + ":1", `empty element`},
		{"mysql", "0-1-5", `is not a server uuid`},
		{"oracle", "0-1-5", `unknown flavor "oracle"`},
	} {
		_, err := ParseGTIDSet(tc.flavor, tc.in)
		if err == nil {
			t.Errorf("ParseGTIDSet(%s, %q) succeeded, want an error with %q", tc.flavor, tc.in, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseGTIDSet(%s, %q): %v, want %q in it", tc.flavor, tc.in, err, tc.want)
		}
		if tc.flavor != "oracle" && !strings.HasPrefix(err.Error(), tc.flavor+" GTID set ") {
			t.Errorf("ParseGTIDSet(%s, %q): %v does not say what it parsed", tc.flavor, tc.in, err)
		}
	}
}

// TestGTIDSetAlgebra checks each pair both ways: contains, what each has
// that the other lacks, the union and whether they are comparable.
func TestGTIDSetAlgebra(t *testing.T) {
	for _, tc := range []struct {
		name         string
		flavor, a, b string
		aHasB, bHasA bool
		aMinusB      string
		bMinusA      string
		union        string
		lossy        bool // the union cannot hold both (diverged MariaDB positions)
	}{
		{"mariadb ahead", "mariadb", "0-1-10", "0-1-5", true, false, "0-1-10", "", "0-1-10", false},
		{"mariadb equal", "mariadb", "0-1-10", "0-1-10", true, true, "", "", "0-1-10", false},
		{"mariadb ahead after failover", "mariadb", "0-2-11", "0-1-10", true, false, "0-2-11", "", "0-2-11", false},
		{"mariadb same seq other server", "mariadb", "0-1-10", "0-2-10", false, false, "0-1-10", "0-2-10", "0-2-10", true},
		{"mariadb extra domain", "mariadb", "0-1-10,1-3-5", "0-1-10", true, false, "1-3-5", "", "0-1-10,1-3-5", false},
		{"mariadb crossed domains", "mariadb", "0-1-10", "0-1-9,1-3-1", false, false, "0-1-10", "1-3-1", "0-1-10,1-3-1", false},
		{"mariadb empty", "mariadb", "", "0-1-1", false, true, "", "0-1-1", "0-1-1", false},
		{"mariadb both empty", "mariadb", "", "", true, true, "", "", "", false},
		{"mysql inside", "mysql", u1 + ":1-10", u1 + ":3-5", true, false, u1 + ":1-2:6-10", "", u1 + ":1-10", false},
		{"mysql overlap", "mysql", u1 + ":1-5", u1 + ":3-8", false, false, u1 + ":1-2", u1 + ":6-8", u1 + ":1-8", false},
		{"mysql extra uuid", "mysql", u1 + ":1-5," + u2 + ":1", u1 + ":1-5", true, false, u2 + ":1", "", u1 + ":1-5," + u2 + ":1", false},
		{"mysql gap", "mysql", u1 + ":1-3:5-7", u1 + ":4", false, false, u1 + ":1-3:5-7", u1 + ":4", u1 + ":1-7", false},
		{"mysql holes", "mysql", u1 + ":1-10", u1 + ":1-3:5:9-12", false, false, u1 + ":4:6-8", u1 + ":11-12", u1 + ":1-12", false},
		{"mysql merged equal", "mysql", u1 + ":1-3:4", u1 + ":1-4", true, true, "", "", u1 + ":1-4", false},
		{"mysql tag", "mysql", u1 + ":1-5:t:1-3", u1 + ":1-5", true, false, u1 + ":t:1-3", "", u1 + ":1-5:t:1-3", false},
		{"mysql disjoint uuids", "mysql", u1 + ":1", u2 + ":1", false, false, u1 + ":1", u2 + ":1", u1 + ":1," + u2 + ":1", false},
		{"mysql empty", "mysql", "", u1 + ":1-3", false, true, "", u1 + ":1-3", u1 + ":1-3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustParse(t, tc.flavor, tc.a), mustParse(t, tc.flavor, tc.b)
			if got := a.Contains(b); got != tc.aHasB {
				t.Errorf("%q.Contains(%q) = %v", a, b, got)
			}
			if got := b.Contains(a); got != tc.bHasA {
				t.Errorf("%q.Contains(%q) = %v", b, a, got)
			}
			if got := a.Subtract(b).String(); got != tc.aMinusB {
				t.Errorf("%q.Subtract(%q) = %q, want %q", a, b, got, tc.aMinusB)
			}
			if got := b.Subtract(a).String(); got != tc.bMinusA {
				t.Errorf("%q.Subtract(%q) = %q, want %q", b, a, got, tc.bMinusA)
			}
			for _, u := range []GTIDSet{a.Union(b), b.Union(a)} {
				if u.String() != tc.union {
					t.Errorf("union of %q and %q = %q, want %q", a, b, u, tc.union)
				}
				if !tc.lossy && (!u.Contains(a) || !u.Contains(b)) {
					t.Errorf("union %q does not contain both %q and %q", u, a, b)
				}
			}
			if got, want := Comparable(a, b), tc.aHasB || tc.bHasA; got != want {
				t.Errorf("Comparable(%q, %q) = %v", a, b, got)
			}
			if got, want := a.Equal(b), tc.aHasB && tc.bHasA; got != want {
				t.Errorf("%q.Equal(%q) = %v", a, b, got)
			}
			// Subtract and Contains agree.
			if a.Subtract(b).IsEmpty() != b.Contains(a) {
				t.Errorf("%q.Subtract(%q) is %q but Contains says %v", a, b, a.Subtract(b), b.Contains(a))
			}
			// Operands are values: nothing above changed them.
			if a.String() != mustParse(t, tc.flavor, tc.a).String() || b.String() != mustParse(t, tc.flavor, tc.b).String() {
				t.Errorf("operands changed: %q, %q", a, b)
			}
		})
	}
}

func TestGTIDSetMixedFlavors(t *testing.T) {
	maria := mustParse(t, "mariadb", "0-1-5")
	my := mustParse(t, "mysql", u1+":1-5")
	emptyMaria := mustParse(t, "mariadb", "")
	emptyMy := mustParse(t, "mysql", "")
	var zero GTIDSet

	if maria.Contains(my) || my.Contains(maria) || Comparable(maria, my) || maria.Equal(my) {
		t.Error("sets of different flavours must be unrelated")
	}
	if !maria.Contains(emptyMy) || !my.Contains(zero) || !zero.Contains(emptyMaria) {
		t.Error("every set contains the empty set of any flavour")
	}
	if !emptyMaria.Equal(emptyMy) || !zero.Equal(emptyMy) || !zero.IsEmpty() || zero.String() != "" {
		t.Error("empty sets are equal whatever their flavour")
	}
	if got := maria.Subtract(my); !got.Equal(maria) {
		t.Errorf("Subtract across flavours = %q, want %q", got, maria)
	}
	if got := zero.Union(my); !got.Equal(my) || got.Flavor() != "mysql" {
		t.Errorf("zero ∪ %q = %q (%s)", my, got, got.Flavor())
	}
	defer func() {
		if recover() == nil {
			t.Error("Union of a MariaDB and a MySQL set did not panic")
		}
	}()
	maria.Union(my)
}

func TestSubtractIntervals(t *testing.T) {
	a := []interval{{1, 10}, {20, 30}}
	b := []interval{{2, 3}, {5, 5}, {9, 21}, {25, 40}}
	got := subtractIntervals(a, b)
	want := []interval{{1, 1}, {4, 4}, {6, 8}, {22, 24}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestMariaDBDomain(t *testing.T) {
	set := mustParse(t, "mariadb", "0-2-57,3-1-7")
	if server, seq, ok := set.Domain(0); !ok || server != 2 || seq != 57 {
		t.Errorf("Domain(0) of %s = %d, %d, %v", set, server, seq, ok)
	}
	if _, _, ok := set.Domain(1); ok {
		t.Errorf("Domain(1) of %s: found", set)
	}
	if _, _, ok := mustParse(t, "mysql", u1+":1-5").Domain(0); ok {
		t.Error("a MySQL set has a MariaDB domain")
	}
}

func TestParseSameFlavor(t *testing.T) {
	if got, err := mustParse(t, "mariadb", "").ParseSameFlavor("0-1-5"); err != nil || got.String() != "0-1-5" {
		t.Errorf("ParseSameFlavor of a MariaDB position: %v, %v", got, err)
	}
	if _, err := mustParse(t, "mysql", u1+":1").ParseSameFlavor("0-1-5"); err == nil {
		t.Error("a MariaDB position parsed as a MySQL set")
	}
	if _, err := (GTIDSet{}).ParseSameFlavor("0-1-5"); err == nil {
		t.Error("the zero set has a flavour")
	}
}
