package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mysos-project/mysos/pkg/seal"
	"github.com/mysos-project/mysos/pkg/spec"
)

// API tokens created through the API are kept twice in one transaction: by
// name (to list and delete them) and by the SHA-256 of their secret (to
// authenticate a request with one read). The secret itself is never stored.
// With a sealer the records are sealed like passwords, the etcd key bound
// in: someone who can write etcd but has not the key file cannot mint a
// token by writing a record, and a record that does not open is no token.

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
	nameKey, hashKey := s.tokenNameKey(t.Name), s.tokenHashKey(sha256)
	byName, err := s.encodeToken(nameKey, storedToken{APIToken: t, SHA256: sha256})
	if err != nil {
		return nil, err
	}
	byHash, err := s.encodeToken(hashKey, storedToken{APIToken: t, SHA256: sha256})
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(nameKey), "=", 0), clientv3.Compare(clientv3.CreateRevision(hashKey), "=", 0)).
		Then(clientv3.OpPut(nameKey, string(byName)), clientv3.OpPut(hashKey, string(byHash))).
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
	key := s.tokenHashKey(sha256)
	v, rev, err := s.getRaw(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if rev == 0 {
		return nil, fmt.Errorf("token %w", ErrNotFound)
	}
	st, _, err := s.decodeToken(key, v)
	if err != nil {
		return nil, fmt.Errorf("token record %s is no token (%v): %w", key, err, ErrNotFound)
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
		st, _, err := s.decodeToken(string(kv.Key), kv.Value)
		if err != nil {
			continue // not a token (see TokenByHash)
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
		v, rev, err := s.getRaw(ctx, nameKey)
		if err != nil {
			return nil, fmt.Errorf("read token: %w", err)
		}
		if rev == 0 {
			return nil, fmt.Errorf("token %q %w", name, ErrNotFound)
		}
		st, _, err := s.decodeToken(nameKey, v)
		if err != nil {
			// Not a token; remove the record all the same.
			st = storedToken{APIToken: spec.APIToken{Name: name}}
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

func (s *Store) encodeToken(key string, st storedToken) ([]byte, error) {
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return s.sealSecrets(key, raw)
}

// decodeToken reads a token record: with a sealer it must be sealed and
// open (stale when sealed with an older key); without one, plain JSON.
func (s *Store) decodeToken(key string, v []byte) (st storedToken, stale bool, err error) {
	plain := v
	if s.sealer != nil {
		var id string
		if plain, id, err = s.sealer.Open(v, []byte(key)); err != nil {
			return storedToken{}, false, err
		}
		stale = id != s.sealer.Primary()
	} else if seal.IsSealed(v) {
		return storedToken{}, false, errors.New("sealed, and this store has no key ring (--secrets-key-file)")
	}
	if err := json.Unmarshal(plain, &st); err != nil {
		return storedToken{}, false, err
	}
	return st, stale, nil
}

// resealTokens seals again, with the primary key, the token records an
// older key of the ring sealed. Unsealed records are not tokens and are
// never sealed (that would turn one written by hand into a token).
func (s *Store) resealTokens(ctx context.Context) (n int, err error) {
	listCtx, cancel := s.withTimeout(ctx)
	resp, err := s.cli.Get(listCtx, s.prefix+"/tokens/", clientv3.WithPrefix())
	cancel()
	if err != nil {
		return 0, fmt.Errorf("reseal tokens: list: %w", err)
	}
	for _, kv := range resp.Kvs {
		st, stale, err := s.decodeToken(string(kv.Key), kv.Value)
		if err != nil || !stale {
			continue
		}
		raw, err := s.encodeToken(string(kv.Key), st)
		if err != nil {
			return n, err
		}
		ok, err := s.putIfUnchanged(ctx, string(kv.Key), kv.ModRevision, raw)
		if err != nil {
			return n, fmt.Errorf("reseal tokens: %w", err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}
