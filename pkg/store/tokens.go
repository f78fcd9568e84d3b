package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/spec"
)

// API tokens created through the API are kept twice in one transaction: by
// name (to list and delete them) and by the SHA-256 of their secret (to
// authenticate a request with one read). The secret itself is never stored.

type storedToken struct {
	spec.APIToken
	SHA256 string `json:"sha256"`
}

func (s *Store) tokenNameKey(name string) string   { return s.prefix + "/tokens/by-name/" + name }
func (s *Store) tokenHashKey(sha256 string) string { return s.prefix + "/tokens/by-hash/" + sha256 }

// CreateToken stores token t, known by the SHA-256 (hex) of its secret;
// ErrAlreadyExists if the name is taken.
func (s *Store) CreateToken(ctx context.Context, t spec.APIToken, sha256 string) (*spec.APIToken, error) {
	t.Token = ""
	raw, err := json.Marshal(storedToken{APIToken: t, SHA256: sha256})
	if err != nil {
		return nil, err
	}
	nameKey, hashKey := s.tokenNameKey(t.Name), s.tokenHashKey(sha256)
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(nameKey), "=", 0), clientv3.Compare(clientv3.CreateRevision(hashKey), "=", 0)).
		Then(clientv3.OpPut(nameKey, string(raw)), clientv3.OpPut(hashKey, string(raw))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("create token %s: %w", t.Name, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("token %q %w", t.Name, ErrAlreadyExists)
	}
	return &t, nil
}

// TokenByHash returns the token whose secret has the given SHA-256;
// ErrNotFound if none.
func (s *Store) TokenByHash(ctx context.Context, sha256 string) (*spec.APIToken, error) {
	var st storedToken
	rev, err := s.readJSON(ctx, s.tokenHashKey(sha256), &st)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if rev == 0 {
		return nil, fmt.Errorf("token %w", ErrNotFound)
	}
	return &st.APIToken, nil
}

// ListTokens returns the stored tokens by name, without secrets.
func (s *Store) ListTokens(ctx context.Context) ([]spec.APIToken, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.tokenNameKey(""), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]spec.APIToken, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st storedToken
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, st.APIToken)
	}
	slices.SortFunc(out, func(a, b spec.APIToken) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteToken removes a token; requests with it fail from then on.
func (s *Store) DeleteToken(ctx context.Context, name string) (*spec.APIToken, error) {
	nameKey := s.tokenNameKey(name)
	for range maxCASRetries {
		var st storedToken
		rev, err := s.readJSON(ctx, nameKey, &st)
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		if rev == 0 {
			return nil, fmt.Errorf("token %q %w", name, ErrNotFound)
		}
		tctx, cancel := s.withTimeout(ctx)
		resp, err := s.cli.Txn(tctx).
			If(clientv3.Compare(clientv3.ModRevision(nameKey), "=", rev)).
			Then(clientv3.OpDelete(nameKey), clientv3.OpDelete(s.tokenHashKey(st.SHA256))).
			Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("delete token %s: %w", name, err)
		}
		if resp.Succeeded {
			return &st.APIToken, nil
		}
	}
	return nil, fmt.Errorf("delete token %s: %w", name, ErrConflict)
}
