// Package logging builds the slog logger every Mysos command uses, from its
// --log-level flag.
package logging

import (
	"fmt"
	"log/slog"
	"os"
)

// New returns a text logger on stderr at level ("debug", "info", "warn" or
// "error") and makes it the default, so libraries that log through slog's
// default logger log the same way.
func New(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
	slog.SetDefault(log)
	return log, nil
}
