// Command mysosctl controls MySQL clusters run by Mysos.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/mysos-project/mysos/pkg/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := ctl.Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
