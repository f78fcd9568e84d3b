package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestIssuedCertificateVerifiesAgainstItsCA(t *testing.T) {
	ca, err := NewCA("mysos test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.Issue("shop-0", []string{"127.0.0.1", "db.example"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf outlives its CA: %v > %v", leaf.NotAfter, ca.Cert.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, host := range []string{"127.0.0.1", "db.example"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SAN = %v", leaf.IPAddresses)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example"}); err == nil {
		t.Error("verified for a host it does not name")
	}
	other, _ := NewCA("other", time.Hour)
	foreign := x509.NewCertPool()
	foreign.AddCert(other.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: foreign, DNSName: "127.0.0.1"}); err == nil {
		t.Error("verified against another CA")
	}
	again, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("LoadCA round trip: %v", err)
	}
	if _, err := LoadCA(pair.CertPEM, pair.KeyPEM); err == nil {
		t.Error("LoadCA accepted a leaf certificate")
	}
}
