package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

// hdfsTarget keeps backups in HDFS (hdfs://namenode:port/path), through
// colinmarc/hdfs, a native Go client of the NameNode and DataNode
// protocols. Its calls take no context; connections are dialled with a
// timeout and every copy checks the context between chunks.
type hdfsTarget struct {
	client   *hdfs.Client
	conns    *hdfsConns
	namenode string
	root     string
}

// hdfsDialTimeout bounds connecting to the NameNode and the DataNodes;
// hdfsIdleTimeout bounds how long a connection may go without a byte
// moving either way. The HDFS client takes no context, so without it a
// server that accepts and never answers would hold a caller forever.
const (
	hdfsDialTimeout = 10 * time.Second
	hdfsIdleTimeout = 30 * time.Second
)

// hdfsConns dials the target's connections, each with an idle timeout
// (every read and write must make progress within idle), and keeps them
// so that a call can be interrupted: the client's own Close waits for the
// call it would interrupt.
type hdfsConns struct {
	dialer *net.Dialer
	idle   time.Duration
	mu     sync.Mutex
	conns  []net.Conn
}

func (h *hdfsConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, c) // a target lives for one job: a few connections
	return &idleConn{Conn: c, idle: h.idle}, nil
}

// closeAll closes every connection, failing the calls that use them.
func (h *hdfsConns) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		_ = c.Close()
	}
}

type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.idle)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func newHDFSTarget(namenode, root, user string) (*hdfsTarget, error) {
	conns := &hdfsConns{dialer: &net.Dialer{Timeout: hdfsDialTimeout}, idle: hdfsIdleTimeout}
	client, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses: []string{namenode}, User: user,
		NamenodeDialFunc: conns.dial, DatanodeDialFunc: conns.dial,
	})
	if err != nil {
		return nil, fmt.Errorf("backup target hdfs://%s%s: %w", namenode, root, err)
	}
	return &hdfsTarget{client: client, conns: conns, namenode: namenode, root: root}, nil
}

func (t *hdfsTarget) String() string { return "hdfs://" + t.namenode + t.root }

func (t *hdfsTarget) path(name string) string { return path.Join(t.root, name) }

// Put uploads to a temporary name, reads the file back and compares it
// with what was sent, then renames it: HDFS renames are atomic.
func (t *hdfsTarget) Put(ctx context.Context, name string, r io.Reader) (Stored, error) {
	if err := checkName(name); err != nil {
		return Stored{}, err
	}
	final, tmp := t.path(name), t.path(tempName(name))
	stored, err := t.upload(ctx, tmp, final, r)
	if err != nil {
		_ = t.client.Remove(tmp)
		return Stored{}, fmt.Errorf("backup: put %s in %s: %w", name, t, err)
	}
	stored.Name = name
	return stored, nil
}

func (t *hdfsTarget) upload(ctx context.Context, tmp, final string, r io.Reader) (Stored, error) {
	if err := t.client.MkdirAll(path.Dir(final), 0o750); err != nil {
		return Stored{}, err
	}
	w, err := t.client.Create(tmp)
	if err != nil {
		return Stored{}, err
	}
	sent := newHashingReader(r)
	_, err = io.Copy(w, contextReader{ctx, sent})
	if cerr := closeWriter(ctx, w); err == nil {
		err = cerr
	}
	if err != nil {
		return Stored{}, err
	}
	back, err := t.client.Open(tmp)
	if err != nil {
		return Stored{}, err
	}
	sum, err := verify(ctx, back, sent)
	if err != nil {
		return Stored{}, err
	}
	if err := t.client.Rename(tmp, final); err != nil {
		return Stored{}, err
	}
	info, err := t.client.Stat(final)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Object: Object{Size: info.Size(), ModTime: info.ModTime()}, SHA256: sum}, nil
}

func (t *hdfsTarget) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var f *hdfs.FileReader
	err := t.withContext(ctx, func() (err error) {
		f, err = t.client.Open(t.path(name))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, name, t)
	}
	return f, err
}

func (t *hdfsTarget) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := t.withContext(ctx, func() error { return t.walk(prefix, &out) })
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func (t *hdfsTarget) walk(prefix string, out *[]Object) error {
	return t.client.Walk(path.Join(t.root, prefixDir(prefix)), func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
				return nil // nothing stored there yet, or renamed or deleted meanwhile
			}
			return err
		}
		if info.IsDir() || strings.HasPrefix(info.Name(), tempPrefix) {
			return nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p, t.root), "/")
		if strings.HasPrefix(name, prefix) {
			*out = append(*out, Object{Name: name, Size: info.Size(), ModTime: info.ModTime()})
		}
		return nil
	})
}

func (t *hdfsTarget) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := t.withContext(ctx, func() error { return t.client.Remove(t.path(name)) })
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s in %s", ErrNotFound, name, t)
	}
	return err
}

// closeWriter completes an upload. The NameNode answers "replication in
// progress" until the DataNode has reported the last block; Close sends
// its completion again, as Hadoop's own client does, until it takes.
func closeWriter(ctx context.Context, w *hdfs.FileWriter) error {
	delay := 10 * time.Millisecond
	for {
		err := w.Close()
		if !hdfs.IsErrReplicating(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// withContext runs an HDFS call, which takes no context, so that it ends
// when ctx does: the target's connections are then closed, which
// interrupts the call (the target is of no further use).
func (t *hdfsTarget) withContext(ctx context.Context, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.conns.closeAll()
		return fmt.Errorf("hdfs %s: %w", t, ctx.Err())
	}
}

// Close implements Target.
func (t *hdfsTarget) Close() error { return t.client.Close() }
