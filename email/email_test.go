package email_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/foyer-intercom/foyer/email"
)

// server is a real SMTP server (go-smtp) on loopback recording what it gets.
type server struct {
	port     int
	mu       sync.Mutex
	got      []string // raw messages
	rcpts    []string
	authUser string
	reject   bool // refuse every recipient with 550
}

func startServer(t *testing.T, tlsCfg *tls.Config, requireAuth bool) *server {
	t.Helper()
	return serveOn(t, listen(t), tlsCfg, requireAuth)
}

// startImplicitTLSServer is startServer speaking TLS from the first byte
// (smtp.tls: tls, port 465), offering no STARTTLS.
func startImplicitTLSServer(t *testing.T, tlsCfg *tls.Config) *server {
	t.Helper()
	return serveOn(t, tls.NewListener(listen(t), tlsCfg), nil, false)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveOn runs the server on ln; with tlsCfg it offers STARTTLS.
func serveOn(t *testing.T, ln net.Listener, tlsCfg *tls.Config, requireAuth bool) *server {
	t.Helper()
	s := &server{port: ln.Addr().(*net.TCPAddr).Port}
	srv := smtp.NewServer(&backend{s: s, requireAuth: requireAuth})
	srv.Domain = "mail.test"
	srv.TLSConfig = tlsCfg
	srv.AllowInsecureAuth = tlsCfg == nil
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

type backend struct {
	s           *server
	requireAuth bool
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct {
	b    *backend
	auth bool
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.auth = true
		s.b.s.mu.Lock()
		s.b.s.authUser = user
		s.b.s.mu.Unlock()
		return nil
	}), nil
}
func (s *session) Mail(string, *smtp.MailOptions) error {
	if s.b.requireAuth && !s.auth {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.s.reject {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.b.s.mu.Lock()
	s.b.s.rcpts = append(s.b.s.rcpts, to)
	s.b.s.mu.Unlock()
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.s.mu.Lock()
	s.b.s.got = append(s.b.s.got, string(b))
	s.b.s.mu.Unlock()
	return err
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestSMTPPlain(t *testing.T) {
	s := startServer(t, nil, false)
	snd, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "foyer <noreply@foyer.test>", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := email.Invitation("anna@example.com", "Harbour View – Ålesund", "TempPass2345abcd", "https://foyer.test")
	if err := snd.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 || fmt.Sprint(s.rcpts) != "[anna@example.com]" {
		t.Fatalf("server got %d messages to %v", len(s.got), s.rcpts)
	}
	msg, err := mail.ReadMessage(strings.NewReader(s.got[0]))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mimeDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subj != "Your intercom access for Harbour View – Ålesund" {
		t.Errorf("subject %q", subj)
	}
	if msg.Header.Get("Message-Id") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("headers without Message-Id or Date: %v", msg.Header)
	}
	if body := bodyOf(t, msg); !strings.Contains(body, "TempPass2345abcd") || !strings.Contains(body, "anna@example.com") {
		t.Errorf("body lacks the login:\n%s", body)
	}
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	tlsCfg, pool := selfSigned(t)
	s := startServer(t, tlsCfg, true)
	cfg := email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "noreply@foyer.test", Username: "mailer", Password: "s3cret", Timeout: 5 * time.Second, RootCAs: pool}
	snd, err := email.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(context.Background(), email.SiteAdded("bob@example.com", "Dock 5")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	if s.authUser != "mailer" || len(s.got) != 1 {
		t.Fatalf("auth user %q, %d messages", s.authUser, len(s.got))
	}
	s.mu.Unlock()

	cfg.Password = "wrong"
	snd, _ = email.NewSMTP(cfg)
	if err := snd.Send(context.Background(), email.SiteAdded("bob@example.com", "Dock 5")); err == nil {
		t.Fatal("a wrong SMTP password went unnoticed")
	}
	cfg.RootCAs, cfg.Password = nil, "s3cret" // the self-signed certificate is not trusted
	snd, _ = email.NewSMTP(cfg)
	if err := snd.Send(context.Background(), email.SiteAdded("bob@example.com", "Dock 5")); err == nil {
		t.Fatal("an untrusted certificate went unnoticed")
	}
}

// TestSMTPStartTLSRequired: by default (smtp.tls unset) a server that
// offers no STARTTLS, as when someone on the path strips it, gets nothing:
// the send fails before any recipient or message, which carries a
// temporary password or a reset link, goes out in clear.
func TestSMTPStartTLSRequired(t *testing.T) {
	s := startServer(t, nil, false)
	snd, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "noreply@foyer.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(context.Background(), email.Invitation("anna@example.com", "Dock 5", "TempPass2345abcd", "https://foyer.test")); err == nil {
		t.Fatal("sent to a server without STARTTLS")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rcpts) != 0 || len(s.got) != 0 {
		t.Fatalf("a server without STARTTLS got recipients %v and %d messages in clear", s.rcpts, len(s.got))
	}
}

// TestSMTPImplicitTLS: smtp.tls "tls" speaks TLS from the first byte
// (port 465) and checks the server's certificate as STARTTLS does.
func TestSMTPImplicitTLS(t *testing.T) {
	tlsCfg, pool := selfSigned(t)
	s := startImplicitTLSServer(t, tlsCfg)
	cfg := email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "noreply@foyer.test", TLS: "tls", Timeout: 5 * time.Second}
	for _, c := range []struct {
		name  string
		roots *x509.CertPool
		sent  bool
	}{
		{"untrusted certificate", nil, false},
		{"trusted certificate", pool, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg.RootCAs = c.roots
			snd, err := email.NewSMTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = snd.Send(context.Background(), email.SiteAdded("bob@example.com", "Dock 5"))
			if sent := err == nil; sent != c.sent {
				t.Fatalf("send: %v, want sent %v", err, c.sent)
			}
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 || fmt.Sprint(s.rcpts) != "[bob@example.com]" {
		t.Fatalf("server got %d messages to %v, want the trusted one's", len(s.got), s.rcpts)
	}
}

func TestSMTPFailures(t *testing.T) {
	s := startServer(t, nil, false)
	s.reject = true
	snd, _ := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "noreply@foyer.test", TLS: "none", Timeout: 5 * time.Second})
	err := snd.Send(context.Background(), email.SiteAdded("gone@example.com", "X"))
	if err == nil || !strings.Contains(err.Error(), "550") && !strings.Contains(err.Error(), "no such mailbox") {
		t.Fatalf("refused recipient: %v, want the server's 550", err)
	}

	// A listener that never answers: the send gives up within the timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	snd, _ = email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "noreply@foyer.test", TLS: "none", Timeout: 500 * time.Millisecond})
	start := time.Now()
	if err := snd.Send(context.Background(), email.SiteAdded("a@example.com", "X")); err == nil {
		t.Fatal("a silent server went unnoticed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("silent server: gave up after %v, want about the 500 ms timeout", d)
	}
}

// TestSMTPZeroTimeout: a configuration without a timeout (smtp.timeout: 0)
// sends, with the documented default bound, rather than failing at once.
func TestSMTPZeroTimeout(t *testing.T) {
	s := startServer(t, nil, false)
	snd, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "noreply@foyer.test", TLS: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(context.Background(), email.SiteAdded("bob@example.com", "Dock 5")); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 {
		t.Fatalf("server got %d messages, want 1", len(s.got))
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []email.SMTPConfig{
		{Port: 25, From: "a@b.c"},
		{Host: "h", From: "not an address"},
		{Host: "h", From: "a@b.c", TLS: "ssl3"},
		{Host: "h", From: "a@b.c", Port: 70000},
		{Host: "h", From: "a@b.c", Password: "p"},
		{Host: "h", From: "a@b.c", Timeout: -time.Second}, // every send would fail
	} {
		if _, err := email.NewSMTP(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestHeaderInjection(t *testing.T) {
	o, err := email.NewOutbox(t.TempDir(), "noreply@foyer.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []email.Message{
		{To: "a@example.com\r\nBcc: victim@example.com", Subject: "x", Text: "x"},
		{To: "a@example.com", Subject: "hi\nBcc: victim@example.com", Text: "x"},
		{To: "a@example.com", Subject: "hi\rBcc: victim@example.com", Text: "x"}, // a bare CR ends a line for some mail software
	} {
		if err := o.Send(context.Background(), m); !errors.Is(err, email.ErrHeader) {
			t.Errorf("%q / %q: %v, want ErrHeader", m.To, m.Subject, err)
		}
	}
	if items, _ := o.List(); len(items) != 0 {
		t.Fatalf("refused messages were written: %v", items)
	}
}

func TestOutbox(t *testing.T) {
	o, err := email.NewOutbox(t.TempDir(), "foyer <noreply@foyer.test>")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := o.Send(context.Background(), email.PasswordReset(fmt.Sprintf("u%d@example.com", i), "https://foyer.test/reset#token=abc")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	items, err := o.List()
	if err != nil || len(items) != 20 {
		t.Fatalf("outbox lists %d items (%v), want 20", len(items), err)
	}
	for i := 1; i < len(items); i++ {
		if items[i-1].Name <= items[i].Name {
			t.Fatalf("not newest first: %s before %s", items[i-1].Name, items[i].Name)
		}
	}
	if items[0].Subject != "Choose a new intercom password" || !strings.HasSuffix(items[0].To, "@example.com>") && !strings.HasSuffix(items[0].To, "@example.com") {
		t.Errorf("item %+v", items[0])
	}
	raw, err := o.Read(items[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bodyOf(t, msg), "https://foyer.test/reset#token=abc") {
		t.Error("the reset link is not in the message")
	}
	for _, bad := range []string{"../x.eml", "/etc/passwd", "nothing.eml", ".hidden.eml.tmp"} {
		if _, err := o.Read(bad); !errors.Is(err, email.ErrNotFound) {
			t.Errorf("Read(%q): %v, want ErrNotFound", bad, err)
		}
	}
}

// TestOutboxReadStaysInside: a name reaching out of the outbox folder reads
// nothing, even where an .eml file lies at the place it names (the
// operator's GET /v1/outbox/{name} gives Read the name as sent).
func TestOutboxReadStaysInside(t *testing.T) {
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "elsewhere.eml"), []byte("Subject: not the outbox's\r\n\r\nx\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := email.NewOutbox(filepath.Join(parent, "outbox"), "noreply@foyer.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../elsewhere.eml", "sub/../../elsewhere.eml"} {
		if b, err := o.Read(name); !errors.Is(err, email.ErrNotFound) {
			t.Errorf("Read(%q): %q, %v; want ErrNotFound", name, b, err)
		}
	}
}

// TestOutboxPrivate: the outbox holds temporary passwords and reset links,
// so its folder and its messages are for the server's own user only (a
// umask can narrow the modes asked for, never widen them).
func TestOutboxPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := email.NewOutbox(dir, "noreply@foyer.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Send(context.Background(), email.Invitation("anna@example.com", "Dock 5", "TempPass2345abcd", "https://foyer.test")); err != nil {
		t.Fatal(err)
	}
	items, err := o.List()
	if err != nil || len(items) != 1 {
		t.Fatalf("outbox lists %v, %v; want the one message", items, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, items[0].Name): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&^want != 0 {
			t.Errorf("%s: mode %v, want at most %v", filepath.Base(path), got, want)
		}
	}
}

// TestAdminInvitation: an admin's invitation, through a real SMTP
// exchange, names the site, the role and the portal, and carries the
// login with its temporary password.
func TestAdminInvitation(t *testing.T) {
	s := startServer(t, nil, false)
	snd, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: s.port, From: "foyer <noreply@foyer.test>", TLS: "none", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := email.AdminInvitation("ivo@example.com", "Harbour View", "installer", "TempPass2345abcd", "https://foyer.test/admin")
	if err := snd.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 || fmt.Sprint(s.rcpts) != "[ivo@example.com]" {
		t.Fatalf("server got %d messages to %v", len(s.got), s.rcpts)
	}
	msg, err := mail.ReadMessage(strings.NewReader(s.got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if subj, _ := new(mimeDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "Your intercom admin access for Harbour View" {
		t.Errorf("subject %q", subj)
	}
	body := bodyOf(t, msg)
	for _, want := range []string{"TempPass2345abcd", "ivo@example.com", "installer", "Harbour View", "https://foyer.test/admin"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}
