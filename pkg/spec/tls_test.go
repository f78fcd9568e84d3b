package spec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidateTLS(t *testing.T) {
	runValidationCases(t, []validationCase{
		{"required without enabled", func(c *MySQLCluster) { c.Spec.TLS = &TLSSpec{Required: true} },
			"spec.tls.required", ErrorTypeInvalid, "needs spec.tls.enabled: true"},
		{"require_secure_transport in mysqlConfig", func(c *MySQLCluster) { c.Spec.MySQLConfig["require_secure_transport"] = "ON" },
			"spec.mysqlConfig[require_secure_transport]", ErrorTypeForbidden, "set spec.tls.required: true instead"},
		{"require-secure-transport behind loose-", func(c *MySQLCluster) {
			c.Spec.TLS = &TLSSpec{Enabled: true}
			c.Spec.MySQLConfig["loose-require-secure-transport"] = "ON"
		}, "spec.mysqlConfig[loose-require-secure-transport]", ErrorTypeForbidden, "spec.tls.required"},
		{"ssl_cert with tls on", func(c *MySQLCluster) {
			c.Spec.TLS = &TLSSpec{Enabled: true}
			c.Spec.MySQLConfig["ssl-cert"] = "/etc/mysql/cert.pem"
		}, "spec.mysqlConfig[ssl-cert]", ErrorTypeForbidden, "Mysos sets it itself"},
		{"ssl_key with tls off", func(c *MySQLCluster) {
			c.Spec.MySQLConfig["ssl_key"] = "/tmp/mysos-0123456789ab/server-key.pem"
		}, "spec.mysqlConfig[ssl_key]", ErrorTypeForbidden, "names a file on the agent"},
		{"skip-ssl with tls on", func(c *MySQLCluster) {
			c.Spec.TLS = &TLSSpec{Enabled: true, Required: true}
			c.Spec.MySQLConfig["skip-ssl"] = ""
		}, "spec.mysqlConfig[skip-ssl]", ErrorTypeForbidden, "Mysos sets ssl itself"},
	})
}

func TestValidateTLSAccepts(t *testing.T) {
	for name, mutate := range map[string]func(c *MySQLCluster){
		"absent":            func(c *MySQLCluster) { c.Spec.TLS = nil },
		"empty":             func(c *MySQLCluster) { c.Spec.TLS = &TLSSpec{} },
		"enabled":           func(c *MySQLCluster) { c.Spec.TLS = &TLSSpec{Enabled: true} },
		"enabled, required": func(c *MySQLCluster) { c.Spec.TLS = &TLSSpec{Enabled: true, Required: true} },
		// Tuning TLS is fine either way.
		"tls_version with tls on": func(c *MySQLCluster) {
			c.Spec.TLS = &TLSSpec{Enabled: true}
			c.Spec.MySQLConfig["tls_version"] = "TLSv1.3"
			c.Spec.MySQLConfig["ssl_cipher"] = "TLS_AES_256_GCM_SHA384"
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := validCluster()
			mutate(c)
			if errs := Validate(c); len(errs) > 0 {
				t.Fatalf("rejected:\n%v", errs)
			}
		})
	}
}

// TestTLSIsOptionalAndChangeable: a cluster without the section keeps its
// JSON (no "tls" key appears), the section decodes strictly, and it may
// be switched on in an update (instances pick it up when relaunched).
func TestTLSIsOptionalAndChangeable(t *testing.T) {
	c := validCluster()
	raw, err := json.Marshal(c.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"tls"`) {
		t.Fatalf("a spec without tls encodes it: %s", raw)
	}
	if c.Spec.TLSEnabled() || c.Spec.TLSRequired() {
		t.Fatal("TLS is on by default")
	}

	doc := `apiVersion: mysos.io/v1alpha1
kind: MySQLCluster
metadata: {name: shop}
spec:
  tls: {enabled: true, required: true}
`
	got, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Spec.TLSEnabled() || !got.Spec.TLSRequired() {
		t.Fatalf("decoded tls %+v", got.Spec.TLS)
	}
	if _, err := Decode([]byte(strings.Replace(doc, "required", "requried", 1))); err == nil || !strings.Contains(err.Error(), "spec.tls.requried") {
		t.Fatalf("a typo in spec.tls: %v; want an unknown-field error naming it", err)
	}

	next := deepCopy(t, c)
	next.Spec.TLS = &TLSSpec{Enabled: true, Required: true}
	if errs := ValidateUpdate(c, next); len(errs) > 0 {
		t.Fatalf("turning TLS on was refused:\n%v", errs)
	}
	if errs := ValidateUpdate(next, c); len(errs) > 0 {
		t.Fatalf("turning TLS off was refused:\n%v", errs)
	}
}

// TestSecureTransportCannotBeSetByHand: require_secure_transport, however
// spelled or abbreviated, is refused in favour of spec.tls.required.
func TestSecureTransportCannotBeSetByHand(t *testing.T) {
	for _, k := range []string{"require_secure_transport", "require-secure-transport", "loose_require_secure_transport", "require_secure"} {
		c := validCluster()
		c.Spec.MySQLConfig = map[string]string{k: "ON"}
		errs := Validate(c)
		if errs == nil || !strings.Contains(errs.Error(), "spec.tls.required") && !strings.Contains(errs.Error(), "abbreviation of require_secure_transport") {
			t.Errorf("mysqlConfig %s: %v; want it refused pointing at spec.tls.required", k, errs)
		}
	}
}
