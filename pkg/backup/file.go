package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// fileTarget keeps backups in a local directory (file:///path), the
// embedded default for the demo.
type fileTarget struct{ root string }

func newFileTarget(root string) (*fileTarget, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("backup target file://%s: %w", root, err)
	}
	return &fileTarget{root: root}, nil
}

func (t *fileTarget) String() string { return "file://" + t.root }

func (t *fileTarget) path(name string) string { return filepath.Join(t.root, filepath.FromSlash(name)) }

// Put writes to a temporary file beside the final one, syncs it, reads it
// back, renames it and syncs the directory, so that a crash at any point
// leaves either nothing or the whole object under its name.
func (t *fileTarget) Put(ctx context.Context, name string, r io.Reader) (Stored, error) {
	if err := checkName(name); err != nil {
		return Stored{}, err
	}
	final, tmp := t.path(name), t.path(tempName(name))
	if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
		return Stored{}, err
	}
	stored, err := t.upload(ctx, tmp, final, r)
	if err != nil {
		os.Remove(tmp)
		return Stored{}, fmt.Errorf("backup: put %s in %s: %w", name, t, err)
	}
	stored.Name = name
	return stored, nil
}

func (t *fileTarget) upload(ctx context.Context, tmp, final string, r io.Reader) (Stored, error) {
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return Stored{}, err
	}
	sent := newHashingReader(r)
	_, err = io.Copy(f, contextReader{ctx, sent})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Stored{}, err
	}
	back, err := os.Open(tmp)
	if err != nil {
		return Stored{}, err
	}
	sum, err := verify(ctx, back, sent)
	if err != nil {
		return Stored{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return Stored{}, err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return Stored{}, err
	}
	info, err := os.Stat(final)
	if err != nil {
		return Stored{}, err
	}
	return Stored{Object: Object{Size: info.Size(), ModTime: info.ModTime()}, SHA256: sum}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (t *fileTarget) Open(_ context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(t.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, name, t)
	}
	return f, err
}

func (t *fileTarget) List(_ context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(filepath.Join(t.root, filepath.FromSlash(prefixDir(prefix))), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing stored there yet, or renamed or deleted meanwhile
		}
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return err
		}
		rel, err := filepath.Rel(t.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, Object{Name: name, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

func (t *fileTarget) Delete(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := os.Remove(t.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s in %s", ErrNotFound, name, t)
	}
	return err
}

// Close implements Target: a directory holds nothing open.
func (t *fileTarget) Close() error { return nil }
