package store

import (
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// EmbeddedConfig configures the single-member etcd a scheduler starts when
// no external cluster is given.
type EmbeddedConfig struct {
	// Dir holds etcd's data; it survives restarts.
	Dir string
	// ClientURL is where clients connect, e.g. http://127.0.0.1:2479.
	ClientURL string
	// PeerURL is the (unused, but required) raft peer address.
	PeerURL string
	// StartTimeout bounds how long to wait for etcd to serve.
	StartTimeout time.Duration
	// AllowRemote lets the URLs be on other than loopback addresses.
	AllowRemote bool
}

// Embedded is a running embedded etcd.
type Embedded struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartEmbedded starts a single-member etcd and waits until it serves.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	clientURL, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd client URL %q: %w", cfg.ClientURL, err)
	}
	peerURL, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd peer URL %q: %w", cfg.PeerURL, err)
	}
	if !cfg.AllowRemote {
		if err := requireLoopback("--embedded-etcd-client-url", cfg.ClientURL, clientURL); err != nil {
			return nil, err
		}
		if err := requireLoopback("--embedded-etcd-peer-url", cfg.PeerURL, peerURL); err != nil {
			return nil, err
		}
	}
	ec := embed.NewConfig()
	ec.Name = "mysos"
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	// A single member has no peers to miss heartbeats from; short ticks only
	// make it elect itself in tens of milliseconds instead of about a second.
	ec.TickMs, ec.ElectionMs = 10, 100
	ec.LogLevel = "error"
	ec.Metrics = "basic"
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed to start: %w", err)
	case <-time.After(timeout):
		e.Close()
		return nil, errors.New("embedded etcd did not become ready within " + timeout.String())
	}
	return &Embedded{etcd: e, endpoints: []string{clientURL.String()}}, nil
}

// Endpoints are the client URLs to dial.
func (e *Embedded) Endpoints() []string { return e.endpoints }

// Close stops etcd. Close clients and cancel watches first, or etcd waits
// several seconds for them. Safe to call more than once.
func (e *Embedded) Close() {
	e.closeOnce.Do(e.etcd.Close)
}
