package devcluster

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Media types of the two codecs. Mesos compares Content-Type with these
// strings exactly: "application/json; charset=utf-8" is refused with 415.
const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
)

// message is what both codecs can carry: every generated mesos-go type.
type message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// codec encodes and decodes one of the two media types.
type codec struct {
	mediaType string
}

func (c codec) encode(m message) ([]byte, error) {
	if c.mediaType == mediaProtobuf {
		return m.Marshal()
	}
	// encoding/json calls the generated MarshalJSON: proto field names, enum
	// names, base64 bytes. json.Marshal adds no newline, so a record never
	// contains one.
	return json.Marshal(m)
}

func (c codec) decode(body []byte, m message) error {
	if c.mediaType == mediaProtobuf {
		return m.Unmarshal(body)
	}
	return json.Unmarshal(body, m)
}

// requestCodec picks the codec of a request body by its Content-Type, which
// must match exactly, answering as Mesos does when it does not: 400 without
// one, 415 for anything else.
func requestCodec(r *http.Request) (codec, int, string) {
	ct, ok := r.Header["Content-Type"]
	if !ok || len(ct) == 0 {
		return codec{}, http.StatusBadRequest, "Expecting 'Content-Type' to be present"
	}
	switch ct[0] {
	case mediaJSON, mediaProtobuf:
		return codec{mediaType: ct[0]}, 0, ""
	}
	return codec{}, http.StatusUnsupportedMediaType,
		fmt.Sprintf("Expecting 'Content-Type' of %s or %s", mediaJSON, mediaProtobuf)
}

// responseCodec negotiates the response codec from Accept. No Accept header
// accepts everything, and JSON wins when both are acceptable, as in Mesos.
func responseCodec(r *http.Request) (codec, bool) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return codec{mediaType: mediaJSON}, true
	}
	if accepts(accept, mediaJSON) {
		return codec{mediaType: mediaJSON}, true
	}
	if accepts(accept, mediaProtobuf) {
		return codec{mediaType: mediaProtobuf}, true
	}
	return codec{}, false
}

// accepts reports whether an Accept header admits mediaType with a non-zero
// quality, honouring */* and type/* wildcards.
func accepts(header, mediaType string) bool {
	typ, _, _ := strings.Cut(mediaType, "/")
	for _, part := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		if mt == mediaType || mt == "*/*" || mt == typ+"/*" {
			return true
		}
	}
	return false
}

// stream is an open RecordIO response: one record per HTTP chunk, flushed at
// once, as real Mesos writes them (some clients parse chunk by chunk).
type stream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	flusher http.Flusher
	codec   codec
	closed  chan struct{}
	once    sync.Once
}

// startStream sends 200 with the negotiated Content-Type and the extra
// headers, no Content-Length, and flushes, so clients see the headers before
// the first event.
func startStream(w http.ResponseWriter, c codec, headers map[string]string) (*stream, error) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		return nil, fmt.Errorf("response writer cannot flush")
	}
	h := w.Header()
	h.Set("Content-Type", c.mediaType)
	for k, v := range headers {
		h.Set(k, v)
	}
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	return &stream{w: w, flusher: flusher, codec: c, closed: make(chan struct{})}, nil
}

// send writes one event as one RecordIO record in one chunk.
func (s *stream) send(ev message) error {
	payload, err := s.codec.encode(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	record := make([]byte, 0, len(payload)+12)
	record = strconv.AppendInt(record, int64(len(payload)), 10)
	record = append(record, '\n')
	record = append(record, payload...)
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return fmt.Errorf("stream closed")
	default:
	}
	if _, err := s.w.Write(record); err != nil {
		s.close()
		return err
	}
	s.flusher.Flush()
	return nil
}

// close ends the stream; the handler serving it returns on done.
func (s *stream) close() {
	s.once.Do(func() { close(s.closed) })
}

// done is closed when the stream is closed by either side.
func (s *stream) done() <-chan struct{} { return s.closed }

// writeError answers a call with a plain-text error, as Mesos does.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}

// readCall does what every v1 call endpoint (scheduler and executor) checks
// first, in Mesos' order: 405 for a method other than POST, 400/415 for the
// Content-Type, 400 for an unreadable body. ok is false once an error has
// been written.
func readCall(w http.ResponseWriter, r *http.Request) (c codec, body []byte, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("405 Method Not Allowed. Expecting one of { 'POST' }, but received '%s'.", r.Method))
		return codec{}, nil, false
	}
	c, code, msg := requestCodec(r)
	if code != 0 {
		writeError(w, code, msg)
		return codec{}, nil, false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Failed to read body: "+err.Error())
		return codec{}, nil, false
	}
	return c, body, true
}
