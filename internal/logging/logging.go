// Package logging builds the slog logger every Mysos command uses, from its
// --log-level and --log-format flags.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// New returns a logger on stderr at level ("debug", "info", "warn" or
// "error") in format ("text" or "json", one object per line for log
// collectors) and makes it the default, so libraries that log through
// slog's default logger log the same way.
func New(level, format string) (*slog.Logger, error) {
	log, err := build(os.Stderr, level, format)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(log)
	return log, nil
}

func build(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
