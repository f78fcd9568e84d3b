package spec

import (
	"strings"
	"testing"
)

func TestValidateRouter(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"no port", func(c *MySQLCluster) { c.Spec.Router = &RouterSpec{} }, "spec.router.readWritePort", ErrorTypeRequired, "readOnlyPort or both"},
		{"privileged", func(c *MySQLCluster) { c.Spec.Router.ReadWritePort = 443 }, "spec.router.readWritePort", ErrorTypeInvalid, "from 1024 to 65535"},
		{"negative", func(c *MySQLCluster) { c.Spec.Router.ReadOnlyPort = -1 }, "spec.router.readOnlyPort", ErrorTypeInvalid, "from 1024"},
		{"too large", func(c *MySQLCluster) { c.Spec.Router.ReadOnlyPort = 65536 }, "spec.router.readOnlyPort", ErrorTypeInvalid, "to 65535"},
		{"same port twice", func(c *MySQLCluster) { c.Spec.Router.ReadOnlyPort = 6446 }, "spec.router.readOnlyPort", ErrorTypeInvalid, "must differ"},
	})
	for _, r := range []*RouterSpec{nil, {ReadWritePort: 6446}, {ReadOnlyPort: 65535}, {ReadWritePort: 1024, ReadOnlyPort: 1025}} {
		c := validCluster()
		c.Spec.Router = r
		if errs := Validate(c); len(errs) > 0 {
			t.Errorf("router %+v rejected: %v", r, errs)
		}
	}
}

func TestRouterPortsDecodeFromYAML(t *testing.T) {
	c, err := Decode([]byte("apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata: {name: a}\nspec:\n  router: {readWritePort: 6446}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Spec.Router.Ports(); len(got) != 1 || got[0].Port != 6446 || got[0].Field != "spec.router.readWritePort" {
		t.Fatalf("ports = %+v", got)
	}
	_, err = Decode([]byte("apiVersion: mysos.io/v1alpha1\nkind: MySQLCluster\nmetadata: {name: a}\nspec:\n  router: {readWritePort: \"x\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.router.readWritePort") {
		t.Fatalf("a port that is no number: err = %v, want one naming spec.router.readWritePort", err)
	}
}

func TestRouterPortConflicts(t *testing.T) {
	mine := validCluster() // shop/orders on 6446 and 6447
	other := validCluster()
	other.Metadata.Namespace, other.Metadata.Name = "billing", "ledger"
	other.Spec.Router = &RouterSpec{ReadWritePort: 7000, ReadOnlyPort: 6446}
	itself := validCluster() // its own stored copy never conflicts
	unrouted := validCluster()
	unrouted.Metadata.Name, unrouted.Spec.Router = "plain", nil

	errs := RouterPortConflicts(mine, nil, []*MySQLCluster{itself, unrouted, other})
	if len(errs) != 1 {
		t.Fatalf("conflicts = %v, want one", errs)
	}
	e := errs[0]
	if e.Field != "spec.router.readWritePort" || !strings.Contains(e.Detail, "a cluster of another namespace") || strings.Contains(e.Detail, "ledger") {
		t.Fatalf("conflict = %+v, want readWritePort, not naming another namespace's cluster", e)
	}
	neighbour := validCluster()
	neighbour.Metadata.Name = "payments"
	neighbour.Spec.Router = &RouterSpec{ReadWritePort: 6447}
	errs = RouterPortConflicts(mine, nil, []*MySQLCluster{neighbour})
	if len(errs) != 1 || errs[0].Field != "spec.router.readOnlyPort" || !strings.Contains(errs[0].Detail, "taken by cluster payments (its spec.router.readWritePort)") {
		t.Fatalf("conflict in one namespace = %v, want readOnlyPort naming payments' readWritePort", errs)
	}
	// Two applies that raced to one port: an update of either that keeps
	// the port is no new claim, so it is not refused for the other's.
	if errs := RouterPortConflicts(mine, validCluster(), []*MySQLCluster{neighbour}); len(errs) != 0 {
		t.Fatalf("an update keeping its ports refused: %v", errs)
	}
	other.Spec.Router.ReadOnlyPort = 7001
	if errs := RouterPortConflicts(mine, nil, []*MySQLCluster{other}); len(errs) != 0 {
		t.Fatalf("distinct ports reported: %v", errs)
	}
}

func TestPortRange(t *testing.T) {
	r, err := ParsePortRange("6446-6999")
	if err != nil || r != DefaultRouterPorts || !r.Admits(6446) || !r.Admits(6999) || r.Admits(6445) || r.Admits(7000) {
		t.Fatalf("6446-6999 = %v, %v", r, err)
	}
	if one, err := ParsePortRange("7000"); err != nil || !one.Admits(7000) || one.Admits(7001) || one.String() != "7000-7000" {
		t.Fatalf("7000 = %v, %v", one, err)
	}
	for _, bad := range []string{"", "x", "7000-6000", "80-9000", "6000-70000", "1-2-3"} {
		if _, err := ParsePortRange(bad); err == nil || !strings.Contains(err.Error(), "LOW-HIGH") {
			t.Errorf("%q: err = %v, want one saying LOW-HIGH", bad, err)
		}
	}
	var any PortRange
	if !any.Admits(1024) || !any.Admits(65535) || any.Admits(1023) || any.String() != "1024-65535" {
		t.Fatalf("the zero range = %s", any)
	}
	c := validCluster() // 6446 and 6447
	errs := RouterPortsOutside(c, nil, PortRange{Min: 6447, Max: 6500})
	if len(errs) != 1 || errs[0].Field != "spec.router.readWritePort" || !strings.Contains(errs[0].Detail, "within 6447-6500") {
		t.Fatalf("outside = %v", errs)
	}
	if errs := RouterPortsOutside(c, validCluster(), PortRange{Min: 6447, Max: 6500}); len(errs) != 0 {
		t.Fatalf("an update keeping a port the range no longer admits refused: %v", errs)
	}
}
