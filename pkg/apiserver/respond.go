package apiserver

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

// authed requires the bearer token. The comparison takes constant time so
// the token cannot be guessed byte by byte from response times.
func (s *Server) authed(h http.HandlerFunc) http.Handler {
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mysos"`)
			msg := "missing bearer token: pass --token or set MYSOS_TOKEN (the scheduler wrote it to its --token-file)"
			if len(got) > 0 {
				msg = "invalid bearer token: use the token in the scheduler's --token-file"
			}
			writeStatus(w, http.StatusUnauthorized, spec.ReasonUnauthorized, msg, nil)
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason, msg string, details *spec.StatusDetails) {
	writeJSON(w, code, &spec.Status{
		APIVersion: "v1", Kind: "Status", Status: "Failure",
		Code: code, Reason: reason, Message: msg, Details: details,
	})
}

// writeInvalid answers validation failures: 400 with reason Invalid (where
// Kubernetes says 422) and every field error as a cause, so one answer
// names them all.
func writeInvalid(w http.ResponseWriter, c *spec.MySQLCluster, errs spec.ErrorList) {
	details := &spec.StatusDetails{Name: c.Metadata.Name, Namespace: c.Metadata.Namespace}
	for _, e := range errs {
		details.Causes = append(details.Causes, spec.StatusCause{Field: e.Field, Message: e.Error()})
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonInvalid,
		"MySQLCluster "+quoteName(c.Metadata.Name)+" is invalid:\n"+errs.Error(), details)
}

// writeDecodeError reports a body that could not be decoded, with every field
// error when the decoder found some.
func writeDecodeError(w http.ResponseWriter, err error) {
	var errs spec.ErrorList
	if errors.As(err, &errs) {
		details := &spec.StatusDetails{}
		for _, e := range errs {
			details.Causes = append(details.Causes, spec.StatusCause{Field: e.Field, Message: e.Error()})
		}
		writeStatus(w, http.StatusBadRequest, spec.ReasonInvalid, "request body is invalid:\n"+errs.Error(), details)
		return
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, "request body: "+err.Error(), nil)
}

func (s *Server) writeStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeStatus(w, http.StatusNotFound, spec.ReasonNotFound, err.Error(), nil)
	case errors.Is(err, store.ErrAlreadyExists):
		writeStatus(w, http.StatusConflict, spec.ReasonAlreadyExists, err.Error(), nil)
	case errors.Is(err, store.ErrConflict):
		writeStatus(w, http.StatusConflict, spec.ReasonConflict, err.Error(), nil)
	default:
		s.log.Error("storage request failed", "err", err)
		writeStatus(w, http.StatusServiceUnavailable, spec.ReasonServiceUnavailable,
			"the store (etcd) did not answer: "+err.Error(), nil)
	}
}

func quoteName(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return `"` + strings.ReplaceAll(name, `"`, `\"`) + `"`
}
