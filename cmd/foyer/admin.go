package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// adminUsage lists the admin subcommands.
const adminUsage = `usage: foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]
       foyer admin restore [--config FILE] [--data-dir DIR] BACKUP`

// admin runs the admin subcommands:
//
//	foyer admin create-owner --email ADDR [--config FILE] [--data-dir DIR]
//	foyer admin restore [--config FILE] [--data-dir DIR] BACKUP
//
// With the embedded store, run them while no `foyer serve` holds the data
// directory.
func admin(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(adminUsage)
	}
	switch args[0] {
	case "create-owner":
		return createOwnerCmd(args[1:], stdin, stdout, stderr)
	case "restore":
		return restoreCmd(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown admin command %q\n%s", args[0], adminUsage)
}

// createOwnerCmd makes the deployment's operator account (owner of every
// site). The password comes from FOYER_ADMIN_PASSWORD, or else the first
// line of standard input, never from a flag (flags show in ps).
func createOwnerCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, flags := commandFlags("admin create-owner", stderr, false)
	addr := fs.String("email", "", "the operator's e-mail address (their login)")
	if err := fs.Parse(args); err != nil {
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
	b, err := openForCommand(flags, stderr)
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

// restoreCmd puts a backup (GET /v1/backup) in place of the embedded
// store, with the node stopped: it checks the file is a whole foyer store,
// holds the current store's lock meanwhile (a running serve makes it fail),
// and keeps the store it replaces beside it, renamed.
func restoreCmd(args []string, stdout, stderr io.Writer) error {
	fs, flags := commandFlags("admin restore", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: foyer admin restore [--config FILE] [--data-dir DIR] BACKUP")
	}
	backup := fs.Arg(0)
	cfg, err := flags.loadWarning(stderr)
	if err != nil {
		return err
	}
	if cfg.Redis.URL != "" || len(cfg.Redis.ClusterAddrs) > 0 {
		return errors.New("this configuration keeps its data in Redis: restore Redis's own backup (RDB or AOF) instead")
	}
	if err := directory.CheckBackup(backup); err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, storeFile)
	_, statErr := os.Stat(path)
	had := statErr == nil
	if had {
		release, err := directory.Hold(path) // its lock, until the new file is in place
		if errors.Is(err, directory.ErrLocked) {
			return fmt.Errorf("%w; stop it first", err)
		}
		if err != nil {
			return err
		}
		defer release()
	} else if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data_dir: %w", err)
	}
	tmp, err := copyInto(cfg.DataDir, backup)
	if err != nil {
		return err
	}
	kept := ""
	if had {
		kept = path + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(path, kept); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := syncDir(cfg.DataDir); err != nil {
		return err
	}
	if kept != "" {
		fmt.Fprintf(stdout, "restored %s as %s; the store it replaced is kept as %s\n", backup, path, kept)
	} else {
		fmt.Fprintf(stdout, "restored %s as %s\n", backup, path)
	}
	return nil
}

// copyInto copies the file src into a new private file in dir, flushed to
// disk, and returns its name.
func copyInto(dir, src string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".restore-*.db")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// syncDir flushes dir's entries (the renames) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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

// demoResidentEmail is the demo site's resident (demo.yaml), who owns
// demo-phone and demo-tablet.
const demoResidentEmail = "resident@example.com"

// demoResident gives the demo's resident a fresh password and prints how
// to sign in to the resident page with it.
func demoResident(ctx context.Context, acc *accounts.Store, dir directory.Store, w io.Writer, base string) error {
	u, err := dir.UserByEmail(ctx, demoResidentEmail)
	if err != nil {
		return err
	}
	password := accounts.NewTempPassword()
	if err := acc.SetAppPassword(ctx, u.ID, password, ""); err != nil {
		return err
	}
	fmt.Fprintf(w, "Resident app: %s/resident  (sign in as %s, password %s; a new one on every start)\n", base, demoResidentEmail, password)
	return nil
}
