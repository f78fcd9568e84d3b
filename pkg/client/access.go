package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/mysos-project/mysos/pkg/spec"
)

// WhoAmI returns the token the client authenticates with.
func (c *Client) WhoAmI(ctx context.Context) (*spec.APIToken, error) {
	var out spec.APIToken
	return &out, c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, &out)
}

// CreateToken makes a token; the answer carries its secret, shown only once.
func (c *Client) CreateToken(ctx context.Context, t spec.APIToken) (*spec.APIToken, error) {
	var out spec.APIToken
	return &out, c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, t, &out)
}

// Tokens lists the tokens the scheduler knows, without their secrets.
func (c *Client) Tokens(ctx context.Context) ([]spec.APIToken, error) {
	var out spec.APITokenList
	if err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// DeleteToken revokes a token created through the API.
func (c *Client) DeleteToken(ctx context.Context, name string) (*spec.APIToken, error) {
	var out spec.APIToken
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(name), nil, nil, &out)
}

func quotaPath(ns string) string { return "/api/v1/namespaces/" + url.PathEscape(ns) + "/quota" }

// Quota returns a namespace's quota with what it uses now.
func (c *Client) Quota(ctx context.Context, ns string) (*spec.ResourceQuota, error) {
	var out spec.ResourceQuota
	return &out, c.do(ctx, http.MethodGet, quotaPath(ns), nil, nil, &out)
}

// SetQuota replaces a namespace's quota.
func (c *Client) SetQuota(ctx context.Context, q spec.ResourceQuota) (*spec.ResourceQuota, error) {
	var out spec.ResourceQuota
	return &out, c.do(ctx, http.MethodPut, quotaPath(q.Namespace), nil, q, &out)
}

// DeleteQuota removes a namespace's quota.
func (c *Client) DeleteQuota(ctx context.Context, ns string) error {
	return c.do(ctx, http.MethodDelete, quotaPath(ns), nil, nil, nil)
}
