package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/foyer-intercom/foyer/accounts"
)

// admin runs the admin subcommands:
//
//	foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]
//
// create-owner makes the deployment's operator account (owner of every
// site). The password comes from FOYER_ADMIN_PASSWORD, or else the first
// line of standard input, never from a flag (flags show in ps). With the
// embedded store, run it while no `foyer serve` holds the data directory.
func admin(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create-owner" {
		return errors.New("usage: foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]")
	}
	fs := flag.NewFlagSet("admin create-owner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var flags configFlags
	flags.register(fs, false)
	addr := fs.String("email", "", "the operator's e-mail address (their login)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *addr == "" {
		return errors.New("admin create-owner: --email is required")
	}
	password := os.Getenv("FOYER_ADMIN_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password from standard input: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return errors.New("admin create-owner: give the password in FOYER_ADMIN_PASSWORD or on standard input")
	}
	b, err := openForCommand("admin create-owner", flags, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	a, err := accounts.New(b.records, nil).CreateAdmin(context.Background(), *addr, password, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "operator %s created (id %s); sign in at the portal: /admin\n", a.Email, a.ID)
	return nil
}

// demoEmail is the operator account `serve --demo` makes for the portal.
const demoEmail = "demo@foyer.localhost"

// demoOperator creates the demo operator, or gives it a fresh password,
// and prints how to sign in to the portal.
func demoOperator(ctx context.Context, acc *accounts.Store, w io.Writer, base string) error {
	password := accounts.NewTempPassword()
	a, err := acc.AdminByEmail(ctx, demoEmail)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		_, err = acc.CreateAdmin(ctx, demoEmail, password, true)
	case err == nil:
		err = acc.SetAdminPassword(ctx, a.ID, password, "")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Admin portal: %s/admin  (sign in as %s, password %s; a new one on every start)\n", base, demoEmail, password)
	return nil
}
