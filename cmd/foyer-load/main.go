// Command foyer-load drives a foyer server with simulated devices and door
// stations over real WebSocket connections, and reports what it measured.
//
//	foyer-load --scenario idle      --devices 5000 --foyer bin/foyer --data-dir DIR --seed-only
//	foyer-load --scenario idle      --tokens tokens.json --url ws://127.0.0.1:8080/v1/signal
//	foyer-load --scenario storm     --tokens tokens.json --rate 200 --duration 20s --answer 7
//	foyer-load --scenario reconnect --tokens tokens.json --devices 5000
//	foyer-load --scenario media     --tokens tokens.json --calls 20
//
// Sockets are spread over worker processes (this binary re-executed with the
// hidden `worker` subcommand, driven by JSON lines on stdin and stdout) and
// over many 127.0.0.x source addresses, so that neither the per-process
// open-file limit nor the ephemeral ports of one source address run out.
// Against several nodes (--url and --metrics take comma-separated lists) the
// connections take the nodes in turn, so every ID has devices on each node,
// and the report adds up the nodes' metrics. The reconnect scenario holds
// its devices with a lean client of the tool's own on raw sockets
// (lean_linux.go; idle can, with --client lean), the others with
// gorilla/websocket.
// Traffic goes to loopback addresses only.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// workerCommand is the hidden subcommand a worker process runs.
const workerCommand = "worker"

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerCommand {
		os.Exit(runWorker(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses the flags, runs the scenario and prints the report; it returns
// the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintln(stderr, "foyer-load:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()

	rep, err := runScenario(ctx, opts, log)
	if err != nil {
		fmt.Fprintln(stderr, "foyer-load:", err)
		return 1
	}
	if rep == nil { // --seed-only
		return 0
	}
	rep.writeTable(stdout)
	if opts.jsonPath != "" {
		if err := rep.writeJSON(opts.jsonPath); err != nil {
			fmt.Fprintln(stderr, "foyer-load:", err)
			return 1
		}
	}
	return 0
}
