package spec

import (
	"fmt"
)

// TLSSpec turns on TLS for a cluster's MySQL traffic: clients, replication
// between members, and Mysos' own connections (the reconciler, seeding,
// backups, the binlog archiver). Mysos issues each instance a certificate
// when it launches it, signed by the cluster's CA (generated per cluster,
// or the scheduler's --mysql-ca-cert); mysosctl credentials hands out the
// CA certificate clients verify the servers with.
//
// A missing section means TLS off, as it was before the section existed:
// existing clusters and their clients keep working unchanged. Turning it
// on is recommended. A change applies to each instance when its task is
// next launched (docs/security.md, "MySQL TLS").
type TLSSpec struct {
	// Enabled gives every instance a certificate and key and configures
	// mysqld with them (ssl_ca, ssl_cert, ssl_key); Mysos then connects
	// over TLS, and replicas replicate over TLS, verifying the server's
	// certificate and name.
	Enabled bool `json:"enabled,omitempty"`
	// Required makes the servers refuse clients that do not use TLS
	// (require_secure_transport=ON). It needs Enabled.
	Required bool `json:"required,omitempty"`
}

// TLSEnabled reports whether the spec asks for TLS.
func (s *ClusterSpec) TLSEnabled() bool { return s.TLS != nil && s.TLS.Enabled }

// TLSRequired reports whether the spec asks the servers to refuse clients
// without TLS.
func (s *ClusterSpec) TLSRequired() bool { return s.TLSEnabled() && s.TLS.Required }

// tlsOptions are the mysqld options spec.tls manages: with TLS on, Mysos
// sets them itself.
var tlsOptions = []string{"ssl", "ssl_ca", "ssl_capath", "ssl_cert", "ssl_key", "ssl_crl", "ssl_crlpath"}

const secureTransportOption = "require_secure_transport"

// validateTLS checks spec.tls and what spec.mysqlConfig may say about TLS
// (require_secure_transport is refused with the other options Mysos sets,
// in mysqlconfig.go).
func validateTLS(s *ClusterSpec) ErrorList {
	var errs ErrorList
	if s.TLS != nil && s.TLS.Required && !s.TLS.Enabled {
		errs = append(errs, invalidErr("spec.tls.required", true,
			"needs spec.tls.enabled: true (the servers can only require TLS once Mysos gives them certificates)"))
	}
	if !s.TLSEnabled() {
		return errs
	}
	// The options naming files are refused with or without TLS
	// (mysqlconfig.go); with it, ssl itself is Mysos' too.
	for _, k := range sortedMapKeys(s.MySQLConfig) {
		for _, name := range optionNames(k) {
			if name == "ssl" {
				errs = append(errs, forbiddenErr(keyPath("spec.mysqlConfig", k), nil,
					fmt.Sprintf("with spec.tls.enabled Mysos sets %s itself from the certificates it issues; remove it from mysqlConfig", name)))
				break
			}
		}
	}
	return errs
}
