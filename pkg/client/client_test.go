package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mysos-project/mysos/pkg/client"
	"github.com/mysos-project/mysos/pkg/spec"
)

// request is what the fake server saw.
type request struct{ method, path, auth, body string }

// fakeServer answers every request with code and body and records it.
func fakeServer(t *testing.T, code int, body string) (*client.Client, *recorder) {
	t.Helper()
	seen := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		seen.add(request{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), string(raw)})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c, seen
}

// recorder is written by the server's goroutines and read by the test.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) add(req request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

func (r *recorder) last() request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func TestSwitchover(t *testing.T) {
	c, seen := fakeServer(t, http.StatusAccepted, `{"id":"switchover-1","kind":"Switchover","from":"shop-0","to":"shop-1","step":"Requested"}`)
	op, err := c.Switchover(context.Background(), "default", "shop", "shop-1")
	if err != nil || op.ID != "switchover-1" || op.To != "shop-1" {
		t.Fatalf("got %+v, %v", op, err)
	}
	got := seen.last()
	var req spec.SwitchoverRequest
	if got.method != "POST" || got.path != "/api/v1/namespaces/default/clusters/shop/switchover" || got.auth != "Bearer tok" ||
		json.Unmarshal([]byte(got.body), &req) != nil || req.To != "shop-1" {
		t.Fatalf("sent %+v", got)
	}
	if _, err := c.Switchover(context.Background(), "default", "shop", ""); err != nil || strings.TrimSpace(seen.last().body) != "{}" {
		t.Fatalf("without a target sent %q, %v; want {}", seen.last().body, err)
	}
}

func TestSwitchoverRefused(t *testing.T) {
	c, _ := fakeServer(t, http.StatusConflict, `{"apiVersion":"v1","kind":"Status","status":"Failure","code":409,"reason":"Conflict","message":"busy"}`)
	_, err := c.Switchover(context.Background(), "default", "shop", "")
	if !client.IsConflict(err) || err.Error() != "busy" {
		t.Fatalf("got %v; want the Conflict status", err)
	}
}

func TestAckFailover(t *testing.T) {
	c, seen := fakeServer(t, http.StatusOK, `{"id":"failover-1","from":"shop-0","to":"shop-2","at":"2026-11-26T10:00:00Z","acknowledged":true}`)
	rec, err := c.AckFailover(context.Background(), "prod", "db")
	if err != nil || !rec.Acknowledged || rec.ID != "failover-1" {
		t.Fatalf("got %+v, %v", rec, err)
	}
	if got := seen.last(); got.method != "POST" || got.path != "/api/v1/namespaces/prod/clusters/db/failover/ack" {
		t.Fatalf("sent %+v", got)
	}
}

func TestEvents(t *testing.T) {
	c, seen := fakeServer(t, http.StatusOK, `{"apiVersion":"mysos.io/v1alpha1","kind":"EventList","items":[{"reason":"A"},{"reason":"B"}]}`)
	ctx := context.Background()
	for _, tc := range []struct{ ns, name, path string }{
		{"default", "shop", "/api/v1/namespaces/default/clusters/shop/events"},
		{"default", "", "/api/v1/namespaces/default/events"},
		{"", "", "/api/v1/events"},
	} {
		evs, err := c.Events(ctx, tc.ns, tc.name)
		if err != nil || len(evs) != 2 || evs[1].Reason != "B" {
			t.Fatalf("%s/%s: %+v, %v", tc.ns, tc.name, evs, err)
		}
		if got := seen.last(); got.method != "GET" || got.path != tc.path {
			t.Fatalf("%s/%s: sent %+v; want GET %s", tc.ns, tc.name, got, tc.path)
		}
	}
	if _, err := c.Events(ctx, "", "shop"); err == nil {
		t.Fatal("a cluster without its namespace was asked for")
	}
}
