package devcluster

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// fetchURIs is the Mesos fetcher: every CommandInfo.URI is downloaded
// (http, https) or copied (absolute local path or file://) into the
// sandbox, under output_file or the URI's base name; executable=true makes
// it 0755 (and is never extracted); otherwise archives (.tar, .tar.gz, .tgz,
// .tar.bz2, .zip) are extracted into the sandbox when extract is true, the
// default. A URI with cache=true comes from the agent's fetcher cache
// (fetchcache.go) when cache is not nil, keyed by user and URI. Any failure
// fails the launch.
func fetchURIs(ctx context.Context, uris []mesos.CommandInfo_URI, sandbox string, cache *fetchCache, user string) error {
	for _, u := range uris {
		if err := fetchURI(ctx, u, sandbox, cache, user); err != nil {
			return fmt.Errorf("failed to fetch '%s': %w", u.Value, err)
		}
	}
	return nil
}

func fetchURI(ctx context.Context, u mesos.CommandInfo_URI, sandbox string, cache *fetchCache, user string) error {
	name := u.GetOutputFile()
	if name == "" {
		p := u.Value
		if parsed, err := url.Parse(u.Value); err == nil && parsed.Scheme != "" {
			p = parsed.Path
		}
		name = path.Base(p)
	}
	if name == "" || name == "." || name == "/" || name == ".." {
		return fmt.Errorf("cannot derive a file name")
	}
	dest := filepath.Join(sandbox, filepath.Clean("/"+name))
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if u.GetCache() && cache != nil {
		cached, err := cache.get(ctx, user, u.Value, func(ctx context.Context, tmp string) error {
			return download(ctx, u.Value, tmp)
		})
		if err != nil {
			return err
		}
		if err := linkOrCopy(cached, dest); err != nil {
			return err
		}
	} else if err := download(ctx, u.Value, dest); err != nil {
		return err
	}
	if u.GetExecutable() {
		return os.Chmod(dest, 0o755)
	}
	if u.Extract == nil || *u.Extract {
		return extractArchive(dest, sandbox)
	}
	return nil
}

// download writes what uri names to dest.
func download(ctx context.Context, uri, dest string) error {
	var src io.ReadCloser
	switch {
	case strings.HasPrefix(uri, "http://"), strings.HasPrefix(uri, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		src = resp.Body
	case strings.HasPrefix(uri, "file://"):
		f, err := os.Open(strings.TrimPrefix(uri, "file://"))
		if err != nil {
			return err
		}
		src = f
	case filepath.IsAbs(uri):
		f, err := os.Open(uri)
		if err != nil {
			return err
		}
		src = f
	default:
		return fmt.Errorf("unsupported URI (only http, https, file:// and absolute paths)")
	}
	defer src.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// extractArchive unpacks file into dir when its name says it is an archive.
func extractArchive(file, dir string) error {
	lower := strings.ToLower(file)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return extractZip(file, dir)
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		return extractTar(gz, dir)
	case strings.HasSuffix(lower, ".tar.bz2"), strings.HasSuffix(lower, ".tbz2"):
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		return extractTar(bzip2.NewReader(f), dir)
	case strings.HasSuffix(lower, ".tar"):
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		return extractTar(f, dir)
	}
	return nil
}

// safeJoin refuses archive entries that would land outside dir.
func safeJoin(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if p != dir && !strings.HasPrefix(p, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("archive entry %q escapes the sandbox", name)
	}
	return p, nil
}

func extractTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p, err := safeJoin(dir, h.Name)
		if err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			_ = os.Chmod(p, mode)
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			_ = os.Remove(p)
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}

func extractZip(file, dir string) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		p, err := safeJoin(dir, zf.Name)
		if err != nil {
			return err
		}
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, zf.Mode().Perm()|0o600)
		if err != nil {
			rc.Close()
			return err
		}
		_, err = io.Copy(f, rc)
		rc.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
