package signaling

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// suiteLogs captures what every hub and router of the whole suite logs, at
// debug level, and the secrets the suite handed out (device tokens, resume
// tokens). After the last test, TestMain fails the run if any secret, or
// any SDP body, appears in any log line.
var suiteLogs = &logCapture{secrets: make(map[string]string)}

type logCapture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	secrets map[string]string // secret → what it is
	// connected is set when a test connected a device, which must then
	// appear in the logs (the capture is wired).
	connected bool
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// mark is where the logs end now, for since.
func (l *logCapture) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// since returns what was logged after mark (the whole suite shares one
// capture, and -count runs a test again over what it logged before).
func (l *logCapture) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf.Bytes()[mark:])
}

// logger is the logger every test node uses.
func (l *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// secret records a value that must never be logged.
func (l *logCapture) secret(value, what string) {
	if value == "" {
		return
	}
	l.mu.Lock()
	l.connected = l.connected || what == "resume token"
	l.secrets[value] = what
	l.mu.Unlock()
}

// check reports the first secret (or SDP body) found in the logs.
func (l *logCapture) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	logs := l.buf.String()
	if l.connected && !strings.Contains(logs, `"msg":"connected"`) {
		return fmt.Errorf("log capture: no connection was logged; the capture is not wired")
	}
	for s, what := range l.secrets {
		if strings.Contains(logs, s) {
			return fmt.Errorf("log hygiene: a %s appears in the logs", what)
		}
	}
	for _, sdp := range []string{"a=ice-pwd", "a=fingerprint", "v=0\\r\\n"} {
		if strings.Contains(logs, sdp) {
			return fmt.Errorf("log hygiene: an SDP body (%q) appears in the logs", sdp)
		}
	}
	return nil
}

// size reports how many secrets and bytes of logs there are; a router's
// goroutine may still be logging.
func (l *logCapture) size() (secrets, bytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.secrets), l.buf.Len()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && !testing.Short() {
		if err := suiteLogs.check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		} else if testing.Verbose() {
			secrets, size := suiteLogs.size()
			fmt.Fprintf(os.Stderr, "log hygiene: %d secrets checked against %d bytes of logs\n", secrets, size)
		}
	}
	if code == 0 {
		// The idle poller is the process's, started once and never
		// stopped, like the runtime's own poller; so are its reader
		// goroutines waiting for a readied connection (one still reading
		// a connection has another function on top, and counts).
		if err := goleak.Find(
			goleak.IgnoreAnyFunction("github.com/foyer-intercom/foyer/signaling.(*idlePoller).run"),
			goleak.IgnoreTopFunction("github.com/foyer-intercom/foyer/signaling.(*idlePoller).reader"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
