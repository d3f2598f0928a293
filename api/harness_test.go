package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/signaling"
)

// operatorEmail and operatorPassword sign in every test's operator.
const (
	operatorEmail    = "operator@example.com"
	operatorPassword = "correct horse battery"
)

// env is one foyer node as cmd/foyer composes it (directory, accounts, the
// signalling hub and the API on one HTTP server) and a real SMTP server
// receiving its mail.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	dir  directory.Store
	acc  *accounts.Store
	mail *mailbox
	// sender sends the node's mail (SMTP, to mail); log is its logger.
	sender api.Mailer
	log    *slog.Logger
	now    *clock
	// logs holds every log line of the node (JSON, debug level).
	logs *syncBuffer
	// meanwhile, when set, runs before each write the API makes to the
	// directory: another edit that lands between the API's read and its
	// write.
	meanwhile atomic.Pointer[func()]
}

// interleaved is the API's directory: the real store, with env.meanwhile
// run before each write.
type interleaved struct {
	directory.Store
	e *env
}

func (s interleaved) Apply(ctx context.Context, ops ...directory.Op) error {
	if f := s.e.meanwhile.Load(); f != nil {
		(*f)()
	}
	return s.Store.Apply(ctx, ops...)
}

// syncBuffer is a bytes.Buffer safe for the node's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clock is the accounts' clock, movable by tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with the API's configuration changed by opt first.
func newEnvWith(t *testing.T, opt func(*api.Config)) *env {
	t.Helper()
	return newEnvFull(t, opt, nil)
}

// newEnvFull is newEnvWith with the hub's configuration changed by hubOpt
// (given the env, its store and mail made) first.
func newEnvFull(t *testing.T, opt func(*api.Config), hubOpt func(*env, *signaling.Config)) *env {
	t.Helper()
	store, err := directory.OpenBolt(filepath.Join(t.TempDir(), "foyer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	records, err := kv.NewBolt(store.DB())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: store, now: &clock{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.acc = accounts.New(records, e.now.now)
	e.mail = startMailbox(t)
	sender, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: e.mail.port, From: "foyer <noreply@foyer.test>", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	journal := accounts.NewJournal(e.acc, log)
	jctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { journal.Run(jctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	var sigCfg signaling.Config
	api.HookSignaling(&sigCfg, e.acc, journal)
	e.sender, e.log = sender, log
	if hubOpt != nil {
		hubOpt(e, &sigCfg)
	}
	hub, err := signaling.NewHub(sigCfg, store, signaling.NewMemory(), nil, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	hctx, stopHub := context.WithCancel(context.Background())
	go hub.Run(hctx)
	backups := t.TempDir()
	cfg := api.Config{Directory: interleaved{store, e}, Accounts: e.acc, Mail: sender, PublicURL: "http://foyer.test", Log: log, LiveCalls: hub.LiveCalls, Connected: hub.Connected, OpenDoor: hub.OpenDoor,
		Backup: func() (*os.File, error) { return store.Backup(backups) }}
	if opt != nil {
		opt(&cfg)
	}
	a, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/signal", hub)
	mux.Handle("/v1/", a)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		stopHub()
	})
	if _, err := e.acc.CreateAdmin(context.Background(), operatorEmail, operatorPassword, true); err != nil {
		t.Fatal(err)
	}
	return e
}

// client is an HTTP client signed in with a bearer token (or none).
type client struct {
	e     *env
	token string
}

func (e *env) anon() *client { return &client{e: e} }

// login signs an admin in and returns their client.
func (e *env) login(addr, password string) *client {
	e.t.Helper()
	var out struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/admin/login", map[string]string{"email": addr, "password": password}, &out)
	return &client{e: e, token: out.Token}
}

func (e *env) operator() *client { return e.login(operatorEmail, operatorPassword) }

// do sends a request; body is JSON-encoded unless it is a string (sent as
// text/csv) or nil. It returns the status and the raw body.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.e.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "text/csv"
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must sends a request, fails unless it gets status, and decodes the body into out.
func (c *client) must(status int, method, path string, body, out any) {
	c.e.t.Helper()
	got, b := c.do(method, path, body)
	if got != status {
		c.e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
}

// wantError sends a request and checks the status and error code.
func (c *client) wantError(status int, code, method, path string, body any) string {
	c.e.t.Helper()
	got, b := c.do(method, path, body)
	var out struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(b, &out)
	if got != status || out.Error.Code != code {
		c.e.t.Fatalf("%s %s: %d %s, want %d %s; body %s", method, path, got, out.Error.Code, status, code, b)
	}
	return out.Error.Message
}

// site creates a site as c and returns its ID.
func (c *client) site(name string) string {
	c.e.t.Helper()
	var s struct{ ID string }
	c.must(http.StatusCreated, "POST", "/v1/sites", map[string]string{"name": name}, &s)
	return s.ID
}

// mailbox is a real SMTP server (go-smtp) on loopback that keeps every
// message it receives.
type mailbox struct {
	port int
	mu   sync.Mutex
	msgs []received
	got  chan struct{}
	// reject, while set, refuses every recipient with 550: a mail server
	// that will not take the message.
	reject atomic.Bool
}

type received struct {
	from string
	to   []string
	data string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	m := &mailbox{got: make(chan struct{}, 1000)}
	s := smtp.NewServer(m)
	s.Domain = "mail.test"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return m
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{m: m}, nil }

type mailSession struct {
	m    *mailbox
	from string
	to   []string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.m.reject.Load() {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.to = append(s.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	s.m.msgs = append(s.m.msgs, received{from: s.from, to: s.to, data: string(b)})
	s.m.mu.Unlock()
	s.m.got <- struct{}{}
	return nil
}
func (s *mailSession) Reset()        { s.to = nil }
func (s *mailSession) Logout() error { return nil }

// sentTo reports whether the message went to addr.
func (r received) sentTo(addr string) bool {
	return slices.ContainsFunc(r.to, func(to string) bool { return strings.EqualFold(to, addr) })
}

// await returns the message find picks from those received, waiting up to
// 5 s for it to come.
func (m *mailbox) await(t *testing.T, what string, find func([]received) (received, bool)) received {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		m.mu.Lock()
		msg, ok := find(m.msgs)
		m.mu.Unlock()
		if ok {
			return msg
		}
		select {
		case <-m.got:
		case <-deadline:
			t.Fatalf("no %s within 5 s", what)
		}
	}
}

// waitFor returns the first message to addr whose body matches re, waiting
// up to 5 s.
func (m *mailbox) waitFor(t *testing.T, addr string, re *regexp.Regexp) received {
	t.Helper()
	return m.await(t, fmt.Sprintf("e-mail to %s matching %s", addr, re), func(msgs []received) (received, bool) {
		i := slices.IndexFunc(msgs, func(r received) bool { return r.sentTo(addr) && re.MatchString(r.data) })
		if i < 0 {
			return received{}, false
		}
		return msgs[i], true
	})
}

// nth returns the n-th message (from 1) to addr, waiting up to 5 s for it.
func (m *mailbox) nth(t *testing.T, addr string, n int) received {
	t.Helper()
	return m.await(t, fmt.Sprintf("e-mail number %d to %s", n, addr), func(msgs []received) (received, bool) {
		seen := 0
		for _, r := range msgs {
			if r.sentTo(addr) {
				if seen++; seen == n {
					return r, true
				}
			}
		}
		return received{}, false
	})
}

// count is how many messages went to addr.
func (m *mailbox) count(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msg := range m.msgs {
		if msg.sentTo(addr) {
			n++
		}
	}
	return n
}

// ws is a signalling connection of a device.
type ws struct {
	t *testing.T
	c *websocket.Conn
}

// connect opens /v1/signal with a device token and reads the welcome.
func (e *env) connect(token string) (*ws, map[string]any) {
	e.t.Helper()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/signal"
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	w := &ws{t: e.t, c: c}
	w.send(map[string]any{"type": "hello", "token": token, "version": 1})
	return w, w.next("welcome")
}

func (w *ws) send(m map[string]any) {
	w.t.Helper()
	if err := w.c.WriteJSON(m); err != nil {
		w.t.Fatal(err)
	}
}

// next reads messages until one of type typ (skipping directory, sdp and
// candidate) and returns it; any other type fails the test.
func (w *ws) next(typ string) map[string]any {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := w.c.ReadJSON(&m); err != nil {
			w.t.Fatalf("waiting for %s: %v", typ, err)
		}
		switch m["type"] {
		case typ:
			return m
		case "directory", "sdp", "candidate":
			continue
		}
		w.t.Fatalf("waiting for %s, got %v", typ, m)
	}
}

// pin types code on a door station's keypad and returns the answer:
// unlock or error.
func (w *ws) pin(code string) map[string]any {
	w.t.Helper()
	w.send(map[string]any{"type": "pin", "code": code, "ref": code})
	_ = w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := w.c.ReadJSON(&m); err != nil {
			w.t.Fatal(err)
		}
		if m["type"] == "unlock" || m["type"] == "error" {
			return m
		}
	}
}

// closed waits until the server closes the connection and returns the close code.
func (w *ws) closed(within time.Duration) int {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := w.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errorsAs(err, &ce) {
			return ce.Code
		}
		w.t.Fatalf("connection not closed by the server within %v: %v", within, err)
	}
}
