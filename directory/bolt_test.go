package directory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/directory/storetest"
)

// openBolt opens a fresh store in a temporary directory, closed at cleanup.
func openBolt(t testing.TB) *directory.Bolt {
	t.Helper()
	b, err := directory.OpenBolt(filepath.Join(t.TempDir(), "directory.db"))
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) directory.Store { return openBolt(t) })
}

// TestBoltKeepsKnownTokensOnly checks that hellos with unknown tokens
// leave nothing in the read cache, where they would push out the tokens of
// the devices that reconnect after a network break; a known one is kept.
func TestBoltKeepsKnownTokensOnly(t *testing.T) {
	ctx := context.Background()
	b := openBolt(t)
	d := directory.Device{ID: "d_monitor", Kind: directory.KindMonitor, Name: "hall", Site: "s_site", Number: "1"}
	_, hash := directory.NewToken()
	if err := b.Apply(ctx,
		directory.PutSite{Site: directory.Site{ID: "s_site", Name: "Site", Settings: directory.DefaultSettings()}},
		directory.PutEntry{Entry: directory.Entry{Site: "s_site", Number: "1", Name: "One"}},
		directory.PutDevice{Device: d},
		directory.SetDeviceToken{ID: d.ID, Token: hash},
	); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		_, unknown := directory.NewToken()
		if _, err := b.DeviceByToken(ctx, unknown); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("an unknown token: got %v, want not found", err)
		}
	}
	if n := b.KeptTokens(); n != 0 {
		t.Fatalf("%d answers kept for unknown tokens; want none", n)
	}
	for range 2 {
		if got, err := b.DeviceByToken(ctx, hash); err != nil || got.ID != d.ID {
			t.Fatalf("the monitor's token: got %+v, %v", got, err)
		}
	}
	if n := b.KeptTokens(); n != 1 {
		t.Fatalf("%d answers kept after the known token was asked for twice; want 1", n)
	}
}

// TestBoltCacheBounded dials more distinct call IDs than the read cache
// keeps answers of, none of which exists (their "not found" is kept too),
// as a door station keyed with made-up numbers would: the cache stays at
// its bound instead of growing with every number tried.
func TestBoltCacheBounded(t *testing.T) {
	ctx := context.Background()
	b := openBolt(t)
	if err := b.Apply(ctx, directory.PutSite{Site: directory.Site{ID: "s_site", Name: "Site", Settings: directory.DefaultSettings()}}); err != nil {
		t.Fatal(err)
	}
	for i := range directory.MaxCached + 100 {
		if _, err := b.Ringable(ctx, "s_site", directory.Number(fmt.Sprint(i))); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("Ringable(%d) = %v, want not found", i, err)
		}
	}
	if n := b.KeptRings(); n != directory.MaxCached {
		t.Fatalf("%d answers kept after %d distinct call IDs; want the bound, %d", n, directory.MaxCached+100, directory.MaxCached)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "directory.db")
	first, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	defer first.Close()

	start := time.Now()
	second, err := directory.OpenBolt(path)
	if err == nil {
		second.Close()
		t.Fatal("a second OpenBolt of the same file succeeded")
	}
	if !errors.Is(err, directory.ErrLocked) || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second OpenBolt: %v, want ErrLocked saying the store is in use", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second OpenBolt took %v, want a fast failure", d)
	}

	// Once the first is closed, the file opens again.
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt after Close: %v", err)
	}
	again.Close()
}

func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory.db")
	b, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	site := directory.Site{ID: "s_1", Name: "Kept", Settings: directory.DefaultSettings()}
	if err := b.Apply(t.Context(), directory.PutSite{Site: site}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	b.Close()
	b, err = directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	defer b.Close()
	if got, err := b.Site(t.Context(), "s_1"); err != nil || got != site {
		t.Errorf("after reopen Site = %+v, %v", got, err)
	}
}

// TestBoltBackup: a backup is the store as it was when taken (a write made
// after it is not in it), opens as a store of its own, and leaves no file
// behind in its directory.
func TestBoltBackup(t *testing.T) {
	ctx := context.Background()
	b := openBolt(t)
	kept := directory.Site{ID: "s_kept", Name: "Kept", Settings: directory.DefaultSettings()}
	after := directory.Site{ID: "s_after", Name: "After", Settings: directory.DefaultSettings()}
	if err := b.Apply(ctx, directory.PutSite{Site: kept}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := b.Backup(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := b.Apply(ctx, directory.PutSite{Site: after}); err != nil {
		t.Fatal(err)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Fatalf("the backup's directory holds %v (%v), want nothing", left, err)
	}

	path := filepath.Join(t.TempDir(), "restored.db")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, f); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	restored, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer restored.Close()
	if s, err := restored.Site(ctx, kept.ID); err != nil || s.Name != kept.Name {
		t.Fatalf("the site made before the backup: %+v, %v", s, err)
	}
	if _, err := restored.Site(ctx, after.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the site made after the backup: %v, want not found", err)
	}

	if _, err := b.Backup(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a backup into a directory that does not exist succeeded")
	}
}

// TestOpenBoltCutShort: a store file shorter than its header says (a copy
// that did not finish) is refused with an error saying so, where bbolt
// opens it with its last pages missing, or crashes the process reading
// past its end (SIGBUS, as `foyer serve` did on a store cut to 16 KiB of
// 32); a whole one opens.
func TestOpenBoltCutShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foyer.db")
	b, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(context.Background(), directory.PutSite{Site: directory.Site{ID: "s_1", Name: "One", Settings: directory.DefaultSettings()}}); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "foyer.db")
	if err := os.WriteFile(cut, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := directory.OpenBolt(cut); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("a store cut short: %v, want it refused as cut short", err)
	}
	again, err := directory.OpenBolt(path)
	if err != nil {
		t.Fatalf("the whole store: %v", err)
	}
	_ = again.Close()
}

// TestCheckBackup: a backup passes; a file that is no bbolt file, one that
// is another program's bbolt file, and a backup cut short do not.
func TestCheckBackup(t *testing.T) {
	b := openBolt(t)
	f, err := b.Backup(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if err := directory.CheckBackup(write("backup.db", whole)); err != nil {
		t.Fatalf("a backup: %v", err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	for name, path := range map[string]string{
		"JSON":                   write("error.json", []byte(`{"error":{"code":"not_found"}}`)),
		"another program's file": other,
	} {
		if err := directory.CheckBackup(path); err == nil {
			t.Errorf("%s passes as a backup", name)
		}
	}
	// Cut short, its pages past the end would be a SIGBUS to read.
	for _, n := range []int{len(whole) / 2, len(whole) - 4096} {
		if err := directory.CheckBackup(write("short.db", whole[:n])); err == nil || !strings.Contains(err.Error(), "cut short") {
			t.Errorf("a backup cut to %d of %d bytes: %v, want it refused as cut short", n, len(whole), err)
		}
	}
}

// TestOpenBoltWaitsForTheFileInPlace: a store opened while another process
// holds its lock (`foyer admin restore`) and puts another file in its
// place meanwhile is the file in place once the lock is released, not the
// one it waited on, now kept under another name. Linux only: it sees the
// wait begin in /proc (bbolt's read-write descriptor for the file).
func TestOpenBoltWaitsForTheFileInPlace(t *testing.T) {
	if _, err := os.Stat("/proc/self/fdinfo"); err != nil {
		t.Skip("no /proc to see the wait begin")
	}
	dir := t.TempDir()
	store := func(path string, site directory.SiteID) {
		b, err := directory.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.Apply(context.Background(), directory.PutSite{Site: directory.Site{ID: site, Name: string(site), Settings: directory.DefaultSettings()}}); err != nil {
			t.Fatal(err)
		}
	}
	path, backup := filepath.Join(dir, "foyer.db"), filepath.Join(dir, "backup.db")
	store(path, "s_old")
	store(backup, "s_restored")

	release, err := directory.Hold(path)
	if err != nil {
		t.Fatal(err)
	}
	type opened struct {
		b   *directory.Bolt
		err error
	}
	done := make(chan opened, 1)
	go func() {
		b, err := directory.OpenBolt(path)
		done <- opened{b, err}
	}()
	for deadline := time.Now().Add(5 * time.Second); !openedForWriting(t, path); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			_ = release()
			t.Fatal("OpenBolt never opened the file")
		}
	}
	if err := os.Rename(path, path+".before-restore"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backup, path); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("OpenBolt: %v", o.err)
	}
	defer o.b.Close()
	sites, err := o.b.Sites(context.Background())
	if err != nil || len(sites) != 1 || sites[0].ID != "s_restored" {
		t.Fatalf("the store opened has %+v (%v), want the file in place: s_restored", sites, err)
	}
}

// openedForWriting reports whether this process has path open read-write.
func openedForWriting(t *testing.T, path string) bool {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err != nil || link != path {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for line := range strings.SplitSeq(string(info), "\n") {
			if flags, ok := strings.CutPrefix(line, "flags:"); ok {
				var f int
				if _, err := fmt.Sscanf(strings.TrimSpace(flags), "%o", &f); err == nil && f&os.O_RDWR != 0 {
					return true
				}
			}
		}
	}
	return false
}
