package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mysos-project/mysos/pkg/spec"
	"github.com/mysos-project/mysos/pkg/store"
)

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
	writeInvalidObject(w, spec.Kind, c.Metadata.Name, c.Metadata.Namespace, errs)
}

// writeInvalidObject answers 400 Invalid for an object of any kind.
func writeInvalidObject(w http.ResponseWriter, kind, name, ns string, errs spec.ErrorList) {
	details := &spec.StatusDetails{Name: name, Namespace: ns}
	for _, e := range errs {
		details.Causes = append(details.Causes, spec.StatusCause{Field: e.Field, Message: e.Error()})
	}
	writeStatus(w, http.StatusBadRequest, spec.ReasonInvalid, kind+" "+quoteName(name)+" is invalid:\n"+errs.Error(), details)
}

// readBody reads a request body of at most MaxBodyBytes, answering 413 or
// 400 itself when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeStatus(w, http.StatusRequestEntityTooLarge, spec.ReasonTooLarge, fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes), nil)
		return nil, false
	case err != nil:
		writeStatus(w, http.StatusBadRequest, spec.ReasonBadRequest, "read request body: "+err.Error(), nil)
		return nil, false
	}
	return body, true
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
	case errors.Is(err, store.ErrRaced):
		writeStatus(w, http.StatusConflict, spec.ReasonConflict,
			err.Error()+": other clusters of the namespace kept changing while its quota was checked; apply again", nil)
	default:
		s.log.Error("storage request failed", "err", err)
		writeStatus(w, http.StatusServiceUnavailable, spec.ReasonServiceUnavailable,
			"the store (etcd) did not answer: "+err.Error(), nil)
	}
}

// quoteName renders a name from a request for a message: quoted, control
// and invisible characters escaped (a terminal showing the message must not
// act on them), cut when long.
func quoteName(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return spec.QuoteValue(name)
}

// decodeStrict reads a small request object (a token, a quota) from JSON or
// YAML as strictly as cluster bodies are read (one document, no duplicate
// keys, bounded nesting) and refuses fields v does not have.
func decodeStrict(body []byte, v any) error {
	obj, err := spec.DecodeObject(body)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
