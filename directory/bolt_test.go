package directory_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
