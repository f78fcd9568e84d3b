package router

import (
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	// IP literals only: a name would be looked up, and tests send nothing
	// beyond loopback.
	for _, ok := range []string{"127.0.0.1", "0.0.0.0"} {
		if err := CheckHost(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// A port in it; an address of no interface here (TEST-NET-1).
	for _, bad := range []string{"127.0.0.1:6446", "192.0.2.1"} {
		if err := CheckHost(bad); err == nil || !strings.Contains(err.Error(), "--router-host") {
			t.Errorf("%q: err = %v, want one naming --router-host", bad, err)
		}
	}
}

func TestOptionsPickOneMode(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string // "" for no error
	}{
		{Options{Name: "shop", RWListen: "127.0.0.1:0"}, ""},
		{Options{SpecHost: "127.0.0.1"}, ""},
		{Options{Name: "shop"}, "nothing to listen on"},
		{Options{RWListen: "127.0.0.1:0"}, "--cluster is required"},
		{Options{SpecHost: "127.0.0.1", Name: "shop"}, "only without it"},
		{Options{SpecHost: "127.0.0.1", ROListen: "127.0.0.1:0"}, "only without it"},
		{Options{SpecHost: "127.0.0.1:6446"}, "without a port"},
	} {
		err := c.o.check()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: err = %v, want %q", c.o, err, c.want)
		}
	}
}
