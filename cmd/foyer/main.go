// Command foyer is the intercom call-signalling server.
//
//	foyer serve [--config FILE] [--listen ADDR] [--data-dir DIR] [--demo]
//	foyer seed [--config FILE] [--data-dir DIR] FILE
//	foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]
//	foyer admin restore [--config FILE] [--data-dir DIR] BACKUP
//	foyer config [--config FILE] [--listen ADDR] [--data-dir DIR]
//	foyer version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "seed":
		err = seed(args[1:], stdout, stderr)
	case "admin":
		err = admin(args[1:], os.Stdin, stdout, stderr)
	case "config":
		err = showConfig(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "foyer", version)
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "foyer: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "foyer %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  foyer serve [--config FILE] [--listen ADDR] [--data-dir DIR] [--demo]
        run the server (no configuration needed: embedded store in ./data, port 8080)
  foyer seed [--config FILE] [--data-dir DIR] FILE
        apply a provisioning file to the configured store; prints device tokens as JSON
  foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]
        create the operator account (password from FOYER_ADMIN_PASSWORD or standard input)
  foyer admin restore [--config FILE] [--data-dir DIR] BACKUP
        put a backup (GET /v1/backup) in place of the embedded store, the server stopped
  foyer config [--config FILE] [--listen ADDR] [--data-dir DIR]
        check the configuration and print it as serve would run with it (secrets redacted)
  foyer version
`)
}
