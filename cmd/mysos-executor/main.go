// Command mysos-executor is the Mysos custom executor: a Mesos agent starts
// it for one MySQL instance's task. It is configured by the MESOS_*
// environment the agent sets; see package executor.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mysos-project/mysos/pkg/executor"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := executor.Main(ctx, log)
	stop()
	os.Exit(code)
}
