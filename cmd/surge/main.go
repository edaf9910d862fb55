// Command surge is the one binary of surge, a distributed load-testing
// cluster: controller, agent, the CLI that submits plans and reads results,
// a demo cluster in one process and a test target.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc/encoding"

	"github.com/surgeload/surge/controller"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	// Snapshots travel zstd-compressed (controller.Zstd); agents that
	// predate it send gzip, read by surge's gzip (level 1, inflating from
	// memory), which replaces gRPC's under the same name. Both before any
	// connection is made.
	encoding.RegisterCompressor(controller.NewZstd())
	encoding.RegisterCompressor(controller.NewGzip())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], newEnv())
	stop()
	os.Exit(code)
}
