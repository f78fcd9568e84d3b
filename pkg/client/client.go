// Package client is a typed Go client of the Mysos API, used by mysosctl and
// the end-to-end tests. It speaks HTTP to the scheduler only; it never
// touches etcd.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/pki"
	"github.com/mysos-project/mysos/pkg/spec"
)

// DefaultTimeout bounds each request whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// Client talks to one Mysos scheduler.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// TLSFiles configure HTTPS: the CA that signed the server's certificate
// (empty: the system's roots), and a client certificate and key for a
// scheduler that asks for one. The server's certificate is always verified.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// New returns a client for the scheduler at server (e.g. http://127.0.0.1:55001
// or https://mysos.example:55001).
func New(server, token string, tlsFiles ...TLSFiles) (*Client, error) {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("server address %q is not a URL like http://127.0.0.1:55001", server)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	for _, f := range tlsFiles {
		if transport.TLSClientConfig, err = f.config(); err != nil {
			return nil, err
		}
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: DefaultTimeout, Transport: transport}}, nil
}

func (f TLSFiles) config() (*tls.Config, error) {
	return pki.ClientTLS(f.CAFile, f.CertFile, f.KeyFile)
}

// Server returns the base URL.
func (c *Client) Server() string { return c.base.String() }

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool { return hasReason(err, spec.ReasonNotFound) }

// IsConflict reports whether err is the API's 409 Conflict: a stale
// resourceVersion, an operation the cluster's state does not allow, or an
// apply that kept losing races with others for the API's retry budget.
func IsConflict(err error) bool { return hasReason(err, spec.ReasonConflict) }

// IsAlreadyExists reports whether a create found the name taken.
func IsAlreadyExists(err error) bool { return hasReason(err, spec.ReasonAlreadyExists) }

func hasReason(err error, reason string) bool {
	var st *spec.Status
	return errors.As(err, &st) && st.Reason == reason
}

func clusterPath(ns, name string) string {
	p := "/api/v1/namespaces/" + url.PathEscape(ns) + "/clusters"
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// Get returns one cluster.
func (c *Client) Get(ctx context.Context, ns, name string) (*spec.MySQLCluster, error) {
	var out spec.MySQLCluster
	return &out, c.do(ctx, http.MethodGet, clusterPath(ns, name), nil, nil, &out)
}

// List returns the clusters of ns ("" for every namespace) matching selector.
func (c *Client) List(ctx context.Context, ns, selector string) ([]*spec.MySQLCluster, error) {
	path := "/api/v1/clusters"
	if ns != "" {
		path = clusterPath(ns, "")
	}
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	var out spec.MySQLClusterList
	if err := c.do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Create stores a new cluster; with dryRun the server only validates and
// defaults it and returns what it would store.
func (c *Client) Create(ctx context.Context, obj *spec.MySQLCluster, dryRun bool) (*spec.MySQLCluster, error) {
	var out spec.MySQLCluster
	return &out, c.do(ctx, http.MethodPost, clusterPath(obj.Metadata.Namespace, ""), dryRunQuery(dryRun), obj, &out)
}

// Update replaces labels, annotations and spec. A non-empty
// obj.Metadata.ResourceVersion makes it conditional.
func (c *Client) Update(ctx context.Context, obj *spec.MySQLCluster, dryRun bool) (*spec.MySQLCluster, error) {
	var out spec.MySQLCluster
	return &out, c.do(ctx, http.MethodPut, clusterPath(obj.Metadata.Namespace, obj.Metadata.Name), dryRunQuery(dryRun), obj, &out)
}

// Delete removes a cluster (or marks it for deletion while the scheduler
// cleans up: then deleted is false).
func (c *Client) Delete(ctx context.Context, ns, name string, dryRun bool) (obj *spec.MySQLCluster, deleted bool, err error) {
	var out spec.MySQLCluster
	code, err := c.doCode(ctx, http.MethodDelete, clusterPath(ns, name), dryRunQuery(dryRun), nil, &out)
	return &out, code == http.StatusOK && !dryRun, err
}

func dryRunQuery(dryRun bool) url.Values {
	if !dryRun {
		return nil
	}
	return url.Values{"dryRun": {"All"}}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	_, err := c.doCode(ctx, method, path, q, in, out)
	return err
}

// doCode sends one request and decodes either out or a Status error.
func (c *Client) doCode(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the Mysos scheduler at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, decodeStatus(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func decodeStatus(code int, raw []byte) error {
	var st spec.Status
	if json.Unmarshal(raw, &st) != nil || st.Kind != "Status" {
		return &spec.Status{Code: code, Reason: http.StatusText(code),
			Message: fmt.Sprintf("HTTP %d: %s", code, strings.TrimSpace(string(raw)))}
	}
	return &st
}

// Credentials reads the generated passwords of a cluster's users; all adds
// Mysos' own accounts.
func (c *Client) Credentials(ctx context.Context, ns, name string, all bool) (*spec.Credentials, error) {
	var out spec.Credentials
	q := url.Values{}
	if all {
		q.Set("all", "true")
	}
	if err := c.do(ctx, http.MethodGet, clusterPath(ns, name)+"/credentials", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Switchover asks Mysos to hand the primary role of a cluster to the
// instance to ("" for the most up-to-date healthy replica). The answer is
// the operation as recorded; the reconciler carries it out afterwards.
func (c *Client) Switchover(ctx context.Context, ns, name, to string) (*spec.Operation, error) {
	var out spec.Operation
	if err := c.do(ctx, http.MethodPost, clusterPath(ns, name)+"/switchover", nil, spec.SwitchoverRequest{To: to}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AckFailover acknowledges a cluster's last automatic failover, so that its
// block window no longer holds back the next one.
func (c *Client) AckFailover(ctx context.Context, ns, name string) (*spec.FailoverRecord, error) {
	var out spec.FailoverRecord
	if err := c.do(ctx, http.MethodPost, clusterPath(ns, name)+"/failover/ack", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reseed asks for an errant instance to be re-seeded from the primary.
func (c *Client) Reseed(ctx context.Context, ns, name, instance string) error {
	return c.do(ctx, http.MethodPost, clusterPath(ns, name)+"/instances/"+url.PathEscape(instance)+"/reseed", nil, nil, nil)
}

// Events returns the events of one cluster, of every cluster of ns when
// name is empty, or of every namespace when ns is empty; oldest first.
func (c *Client) Events(ctx context.Context, ns, name string) ([]spec.Event, error) {
	path := "/api/v1/events"
	switch {
	case ns == "" && name != "":
		return nil, fmt.Errorf("events of cluster %s: name its namespace", name)
	case name != "":
		path = clusterPath(ns, name) + "/events"
	case ns != "":
		path = "/api/v1/namespaces/" + url.PathEscape(ns) + "/events"
	}
	var out spec.EventList
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Version returns the server's version string.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	err := c.do(ctx, http.MethodGet, "/version", nil, nil, &v)
	return v.Version, err
}
