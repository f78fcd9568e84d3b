package scheduler

import (
	"strings"
	"testing"
)

func TestCheckRouterHost(t *testing.T) {
	// IP literals only: a name would be looked up, and tests send nothing
	// beyond loopback.
	for _, ok := range []string{"127.0.0.1", "0.0.0.0"} {
		if err := checkRouterHost(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// A port in it; an address of no interface here (TEST-NET-1).
	for _, bad := range []string{"127.0.0.1:6446", "192.0.2.1"} {
		if err := checkRouterHost(bad); err == nil || !strings.Contains(err.Error(), "--router-host") {
			t.Errorf("%q: err = %v, want one naming --router-host", bad, err)
		}
	}
}
