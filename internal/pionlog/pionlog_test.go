package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLevels: Pion's warnings and errors keep their level, its info and
// debug are foyer's debug, trace is dropped, and every line names the
// subsystem.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := Factory{Log: log}.NewLogger("ice")
	l.Trace("t1")
	l.Tracef("t%d", 2)
	l.Debug("d1")
	l.Infof("i%d", 2)
	l.Warn("w1")
	l.Errorf("e%d", 2)
	want := []string{
		`level=DEBUG msg=d1 pion=ice`,
		`level=DEBUG msg=i2 pion=ice`,
		`level=WARN msg=w1 pion=ice`,
		`level=ERROR msg=e2 pion=ice`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %q, want it to contain %q", i, lines[i], w)
		}
	}

	buf.Reset()
	quiet := Factory{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}.NewLogger("dtls")
	quiet.Infof("hidden %d", 1)
	quiet.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatalf("below the logger's level, got %q", buf.String())
	}
}
