package devcluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// fetchCache is an agent's fetcher cache, as Mesos' --fetcher_cache_dir: a
// URI with cache=true is downloaded once per agent, user and URI, and every
// later fetch of it takes the cached file. Launches of the same URI that
// overlap wait for the one download. A failed download is not cached.
//
// Two differences from Mesos, both documented in docs/devcluster.md: the
// cache has no size limit (Mesos evicts past --fetcher_cache_size), and a
// cached file is hard-linked into the sandbox rather than copied (it falls
// back to a copy across file systems), so a task that rewrote its fetched
// file in place would change the cache.
type fetchCache struct {
	dir string

	mu      sync.Mutex
	entries map[string]*cacheEntry
}

type cacheEntry struct {
	ready chan struct{} // closed when the download ended
	path  string
	err   error
}

func newFetchCache(dir string) *fetchCache {
	return &fetchCache{dir: dir, entries: map[string]*cacheEntry{}}
}

// get returns the cached file of user's uri, downloading it with download
// on a miss.
func (c *fetchCache) get(ctx context.Context, user, uri string, download func(ctx context.Context, dest string) error) (string, error) {
	key := user + "\x00" + uri
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		sum := sha256.Sum256([]byte(key))
		e = &cacheEntry{ready: make(chan struct{}), path: filepath.Join(c.dir, hex.EncodeToString(sum[:16]))}
		c.entries[key] = e
		c.mu.Unlock()
		e.err = c.fill(ctx, e.path, download)
		if e.err != nil {
			c.mu.Lock()
			delete(c.entries, key)
			c.mu.Unlock()
		}
		close(e.ready)
		return e.path, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if e.err != nil {
		return "", e.err
	}
	return e.path, nil
}

// fill downloads into a temporary file and renames it into place, so the
// cache never holds half a file.
func (c *fetchCache) fill(ctx context.Context, path string, download func(ctx context.Context, dest string) error) error {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	tmp := path + ".part"
	if err := download(ctx, tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// linkOrCopy puts the cached file src at dest.
func linkOrCopy(src, dest string) error {
	_ = os.Remove(dest)
	if os.Link(src, dest) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
