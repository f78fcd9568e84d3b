// Package backup stores backups: a Target is a place backups go to (HDFS,
// or a local directory for the demo), with uploads that are atomic and
// verified, so that a half-written backup is never listed as good.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

// Object is a stored backup file.
type Object struct {
	// Name is the path below the target's root, with '/' separators.
	Name    string
	Size    int64
	ModTime time.Time
}

// Stored is what Put wrote: the object and the SHA-256 of its bytes, as
// read back from the target after the upload.
type Stored struct {
	Object
	SHA256 string
}

// Target is where backups are kept. Put is atomic: the bytes go to a
// temporary name, are read back and checked, and only then get their name;
// List never shows temporary names. A failed Put leaves nothing listed.
type Target interface {
	Put(ctx context.Context, name string, r io.Reader) (Stored, error)
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the objects whose names start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]Object, error)
	Delete(ctx context.Context, name string) error
	// String is the target's URL, for messages.
	String() string
	// Close lets go of the target's connections (an HDFS client keeps
	// some open); the target is not used afterwards.
	Close() error
}

// ErrNotFound: no object has the name.
var ErrNotFound = errors.New("backup: no such object")

// tempPrefix marks an upload in progress; List skips such names.
const tempPrefix = ".tmp-"

// Options configure targets.
type Options struct {
	// HadoopUser is the user HDFS sees (default "mysos").
	HadoopUser string
}

// Open returns the target a URL names: hdfs://namenode:port/path (HDFS)
// or file:///path (a local directory).
func OpenTarget(rawURL string, opts Options) (Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("backup target %q: %w", rawURL, err)
	}
	root := path.Clean("/" + u.Path)
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("backup target %q: a file URL names a local path: file:///path", rawURL)
		}
		return newFileTarget(root)
	case "hdfs":
		if u.Host == "" {
			return nil, fmt.Errorf("backup target %q: name the NameNode: hdfs://host:port/path", rawURL)
		}
		user := opts.HadoopUser
		if user == "" {
			user = "mysos"
		}
		return newHDFSTarget(u.Host, root, user)
	}
	return nil, fmt.Errorf("backup target %q: unknown scheme %q; use hdfs://host:port/path or file:///path", rawURL, u.Scheme)
}

// checkName refuses names that would leave the target's root or look like
// an upload in progress.
func checkName(name string) error {
	clean := path.Clean(name)
	if name == "" || clean != name || strings.HasPrefix(name, "/") || strings.HasPrefix(name, "../") || name == ".." {
		return fmt.Errorf("backup: object name %q: want a relative path without . or .. elements", name)
	}
	if strings.HasPrefix(path.Base(name), tempPrefix) {
		return fmt.Errorf("backup: object name %q: names starting with %q are uploads in progress", name, tempPrefix)
	}
	return nil
}

// prefixDir is the directory a List of prefix walks: the part of prefix up
// to its last slash, so that a cluster's listing reads that cluster's
// objects only.
func prefixDir(prefix string) string {
	i := strings.LastIndex(prefix, "/")
	if i < 0 {
		return ""
	}
	return prefix[:i]
}

// tempName is where name is uploaded before it is renamed.
func tempName(name string) string {
	dir, base := path.Split(name)
	return dir + tempPrefix + fmt.Sprintf("%d-", time.Now().UnixNano()) + base
}

// hashingReader counts and hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader { return &hashingReader{r: r, h: sha256.New()} }

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// verify reads an uploaded file back and compares it with what was sent.
func verify(ctx context.Context, r io.ReadCloser, sent *hashingReader) (string, error) {
	defer r.Close()
	back := newHashingReader(r)
	if _, err := io.Copy(io.Discard, contextReader{ctx, back}); err != nil {
		return "", fmt.Errorf("read back: %w", err)
	}
	if back.n != sent.n || back.sum() != sent.sum() {
		return "", fmt.Errorf("read back %d bytes with SHA-256 %s; %d bytes with %s were sent", back.n, back.sum(), sent.n, sent.sum())
	}
	return back.sum(), nil
}

// contextReader stops reading once ctx ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
