package backup

// This file moves a backup's dump, or a segment of binary log, in and out
// of a target: compressed with zstd on the way in, and on the way out
// decompressed and checked against its manifest, so that a damaged object
// is reported as such.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/zstd"
)

// ErrCorrupt: a backup's stored dump, or an archived segment of binary
// log, does not match its manifest or cannot be decompressed.
var ErrCorrupt = errors.New("backup is corrupt")

// corruptError says how a backup is corrupt and is ErrCorrupt.
type corruptError struct{ msg string }

func (e *corruptError) Error() string        { return e.msg }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupt says that what (a backup, a binlog segment) is corrupt.
func corrupt(what, format string, args ...any) error {
	return &corruptError{msg: what + " is corrupt: " + fmt.Sprintf(format, args...)}
}

// Upload stores what r yields, compressed with zstd, under name, and
// returns the stored object and how many bytes r yielded. The compressor
// runs beside the upload: after a failed upload it may still read r until
// r ends or fails, so the caller stops r's source. An error of r comes back
// wrapped, so errors.As finds it.
func Upload(ctx context.Context, t Target, name string, r io.Reader) (Stored, int64, error) {
	pr, pw := io.Pipe()
	raw := make(chan int64, 1)
	go func() {
		n, err := compress(pw, r)
		pw.CloseWithError(err)
		raw <- n
	}()
	stored, err := t.Put(ctx, name, pr)
	// A failed Put may have stopped reading: unblock the compressor.
	pr.CloseWithError(errors.New("the upload ended"))
	if err != nil {
		return Stored{}, 0, err
	}
	return stored, <-raw, nil
}

func compress(w io.Writer, r io.Reader) (int64, error) {
	enc, err := zstd.NewWriter(w)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(enc, r)
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// OpenVerified streams a backup's dump, decompressed. It hashes the stored
// bytes as they come and, at the end, returns an ErrCorrupt error instead
// of io.EOF if they are not what the manifest says; so does a dump that
// cannot be decompressed. Whoever loads the dump should read it to the end
// even after a failure of its own: a corrupt object often shows first as
// garbage, and only the checksum tells that it is the cause.
func OpenVerified(ctx context.Context, t Target, m Manifest) (io.ReadCloser, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	return openChecked(ctx, t, "backup "+m.name(), Dir(m.Namespace, m.Cluster, m.ID), m.Payload)
}

// checkedObject is a stored object and what its manifest says of it.
type checkedObject struct {
	what string // what messages call it: "backup shop/20261126T040703Z"
	Payload
}

// openChecked is OpenVerified for any object a manifest describes (what
// names it in messages, dir is the manifest's directory).
func openChecked(ctx context.Context, t Target, what, dir string, p Payload) (io.ReadCloser, error) {
	o := checkedObject{what: what, Payload: p}
	raw, err := t.Open(ctx, path.Join(dir, p.Object))
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %s: %w", o.what, t, o.Object, err)
	}
	src := &storedReader{hashingReader: newHashingReader(contextReader{ctx, raw})}
	// One goroutine: src is read only in Read's caller, so its sums are
	// final once the decoder returns.
	dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1))
	if err != nil {
		raw.Close()
		return nil, err
	}
	return &verifiedReader{o: o, target: t.String(), raw: raw, src: src, dec: dec}, nil
}

// storedReader hashes the stored bytes and remembers a failure to read
// them, which is the target's fault, not the object's.
type storedReader struct {
	*hashingReader
	err error
}

func (s *storedReader) Read(p []byte) (int, error) {
	n, err := s.hashingReader.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

type verifiedReader struct {
	o      checkedObject
	target string
	raw    io.ReadCloser
	src    *storedReader
	dec    *zstd.Decoder
	err    error // once set, every Read returns it
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.dec.Read(p)
	if err != nil {
		v.err = v.finish(err)
	}
	return n, v.err
}

// finish checks the stored object once decompression stopped with decErr.
func (v *verifiedReader) finish(decErr error) error {
	// The decoder stops early on a bad block and may leave trailing
	// bytes: the checksum covers the whole object.
	if v.src.err == nil {
		_, _ = io.Copy(io.Discard, v.src)
	}
	if v.src.err != nil {
		return fmt.Errorf("%s in %s: read %s: %w", v.o.what, v.target, v.o.Object, v.src.err)
	}
	if v.src.n != v.o.Size {
		return corrupt(v.o.what, "%s has %d bytes, its manifest says %d", v.o.Object, v.src.n, v.o.Size)
	}
	if sum := v.src.sum(); sum != v.o.SHA256 {
		return corrupt(v.o.what, "%s has SHA-256 %s, its manifest says %s", v.o.Object, sum, v.o.SHA256)
	}
	if decErr != io.EOF {
		return corrupt(v.o.what, "%s matches its manifest's checksum but cannot be decompressed: %v", v.o.Object, decErr)
	}
	return io.EOF
}

func (v *verifiedReader) Close() error {
	v.dec.Close()
	return v.raw.Close()
}
