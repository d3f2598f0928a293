package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/foyer-intercom/foyer/directory"
)

// demoFile is the site `foyer serve --demo` provisions.
//
//go:embed demo.yaml
var demoFile []byte

// seed applies a provisioning file and prints {"tokens": {name: token}}.
func seed(args []string, stdout, stderr io.Writer) error {
	fs, flags := commandFlags("seed", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: foyer seed [--config FILE] [--data-dir DIR] FILE")
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b, err := openForCommand(flags, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	tokens, err := provision(context.Background(), b.store, data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return json.NewEncoder(stdout).Encode(map[string]map[string]string{"tokens": tokens})
}

// provision parses and applies a provisioning file, all or nothing.
func provision(ctx context.Context, store directory.Store, data []byte) (map[string]string, error) {
	file, err := directory.ParseProvision(data)
	if err != nil {
		return nil, err
	}
	return directory.Provision(ctx, store, file)
}

// seedDemo provisions the demo site and prints its device tokens and the
// pages to open with them.
func seedDemo(ctx context.Context, store directory.Store, w io.Writer, base string) error {
	tokens, err := provision(ctx, store, demoFile)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(tokens))
	for n := range tokens {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Demo site \"Demo House\" is ready (call ID 101 rings hall-101, demo-phone and demo-tablet).")
	fmt.Fprintln(w, "Device tokens (new ones on every start):")
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, tokens[n])
	}
	fmt.Fprintln(w, "A first call, in two browser tabs:")
	fmt.Fprintf(w, "  resident:     %s/resident#token=%s\n", base, tokens["demo-phone"])
	fmt.Fprintf(w, "  door station: %s/door#token=%s   (press 101)\n", base, tokens["front-door"])
	return nil
}
