package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// TokenStore keeps the tokens created through the API (pkg/store keeps
// them in etcd, by the SHA-256 of the secret only).
type TokenStore interface {
	TokenByHash(ctx context.Context, sha256 string) (*spec.APIToken, error)
	CreateToken(ctx context.Context, t spec.APIToken, sha256 string) (*spec.APIToken, error)
	ListTokens(ctx context.Context) ([]spec.APIToken, error)
	DeleteToken(ctx context.Context, name string) (*spec.APIToken, error)
}

// storedTokens authenticates against a TokenStore.
type storedTokens struct{ TokenStore }

func (s storedTokens) Authenticate(ctx context.Context, token string) (*spec.APIToken, error) {
	t, err := s.TokenByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownToken
	}
	return t, err
}

// NewToken returns a random bearer token: 32 bytes, hex.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// whoami answers with the request's token, as `kubectl auth whoami` does.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	t := *identity(r)
	t.APIVersion, t.Kind = spec.APIVersion, spec.WhoAmIKind
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	items := s.files.list()
	if s.cfg.Tokens != nil {
		stored, err := s.cfg.Tokens.ListTokens(r.Context())
		if err != nil {
			s.writeStoreError(w, err)
			return
		}
		items = append(items, stored...)
	}
	slices.SortFunc(items, func(a, b spec.APIToken) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, spec.APITokenList{APIVersion: spec.APIVersion, Kind: spec.APITokenListKind, Items: items})
}

// createToken makes a token and answers with its secret, the only time the
// secret is shown: the store keeps its SHA-256.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Tokens == nil {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "this server keeps no tokens of its own: define tokens in its --tokens-file", nil)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req spec.APIToken
	if err := decodeStrict(body, &req); err != nil {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
			"token body: "+err.Error()+` (send {"name": "...", "role": "admin|read-only", "namespaces": [...]})`, nil)
		return
	}
	if req.Token != "" || req.Source != "" || req.CreationTimestamp != "" {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, "token, source and creationTimestamp are set by the server: leave them out", nil)
		return
	}
	if errs := spec.ValidateAPIToken(&req); len(errs) > 0 {
		writeInvalidObject(w, spec.APITokenKind, req.Name, "", errs)
		return
	}
	if s.files.has(req.Name) {
		writeStatus(w, http.StatusConflict, spec.ReasonAlreadyExists, "token "+quoteName(req.Name)+" is defined in the scheduler's token files: choose another name", nil)
		return
	}
	secret, err := NewToken()
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, spec.ReasonInternalError, "generate token: "+err.Error(), nil)
		return
	}
	req.APIVersion, req.Kind = spec.APIVersion, spec.APITokenKind
	req.Source, req.CreationTimestamp = "etcd", time.Now().UTC().Format(time.RFC3339)
	created, err := s.cfg.Tokens.CreateToken(r.Context(), req, HashToken(secret))
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("token created", "token", created.Name, "role", created.Role, "namespaces", created.Namespaces, "by", identity(r).Name)
	out := *created
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("token")
	if !spec.IsDNSLabel(name) {
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest,
			"token name "+quoteName(name)+" is not a valid name: use lowercase letters, digits and '-'", nil)
		return
	}
	if s.files.has(name) {
		writeStatus(w, http.StatusConflict, spec.ReasonConflict, "token "+quoteName(name)+" is defined in the scheduler's token files: remove it there and restart the scheduler", nil)
		return
	}
	if s.cfg.Tokens == nil {
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, "token "+quoteName(name)+" not found", nil)
		return
	}
	deleted, err := s.cfg.Tokens.DeleteToken(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, err)
		return
	}
	s.log.Info("token deleted", "token", name, "by", identity(r).Name)
	writeJSON(w, http.StatusOK, deleted)
}
