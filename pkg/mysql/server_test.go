package mysql

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestOpenNeedsAnAddress(t *testing.T) {
	for _, ep := range []Endpoint{{}, {Host: "127.0.0.1"}, {Port: 3306}} {
		if _, err := Open(ep, MariaDB); err == nil {
			t.Errorf("Open(%+v) succeeded", ep)
		}
	}
	if _, err := Open(Endpoint{Socket: "/tmp/x.sock"}, nil); err == nil {
		t.Error("Open without a flavor succeeded")
	}
}

// TestPingRefused: Open does no I/O, and a failing Ping names the server
// but not the password.
func TestPingRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	srv, err := Open(Endpoint{Host: "127.0.0.1", Port: port, User: "u", Password: "hunter2"}, MySQL8)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Flavor() != MySQL8 {
		t.Errorf("Flavor() = %v", srv.Flavor())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Ping(ctx)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Ping: %v", err)
	}
	if err := srv.ReplicateFrom(ctx, Source{Host: "", Port: 1}); err == nil {
		t.Error("ReplicateFrom without a host succeeded")
	}
	if err := srv.WaitForGTID(ctx, GTIDSet{}); err != nil {
		t.Errorf("waiting for nothing: %v", err)
	}
	if err := srv.EnableSemiSync(ctx, true, 1, 0); err == nil {
		t.Error("EnableSemiSync with no timeout succeeded")
	}
}
