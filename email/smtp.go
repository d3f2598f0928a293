package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig is the outgoing mail server.
type SMTPConfig struct {
	Host     string
	Port     int // default 587 (465 with TLS "tls")
	Username string
	Password string
	// From is the sender, e.g. "foyer <intercom@example.com>".
	From string
	// TLS is "starttls" (default: required), "tls" (implicit, port 465)
	// or "none" (a relay on the same host or network only).
	TLS string
	// Timeout bounds the whole exchange of one message, connecting
	// included, so a server that accepts and then says nothing cannot
	// hold a sender. Default 30 s.
	Timeout time.Duration
	// RootCAs, when set, replaces the system roots (a private CA).
	RootCAs *x509.CertPool
}

// Validate says what is wrong with the configuration.
func (c SMTPConfig) Validate() error {
	switch {
	case c.Host == "":
		return errors.New("smtp.host is empty")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("smtp.port %d is not a port", c.Port)
	case c.TLS != "" && c.TLS != "starttls" && c.TLS != "tls" && c.TLS != "none":
		return fmt.Errorf("smtp.tls %q: want starttls, tls or none", c.TLS)
	case c.Password != "" && c.Username == "":
		return errors.New("smtp.password is set without smtp.username")
	case c.Timeout < 0:
		return fmt.Errorf("smtp.timeout %v is negative", c.Timeout)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp.from %q is not an address: %w", c.From, err)
	}
	return nil
}

// SMTP sends over an SMTP server, one connection per message.
type SMTP struct {
	// Immutable after construction.
	cfg  SMTPConfig
	opts []gomail.Option
}

var _ Sender = (*SMTP)(nil)

// NewSMTP returns a sender for cfg.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	tlsCfg := &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout), gomail.WithTLSConfig(tlsCfg), gomail.WithDialContextFunc(dialer(cfg, tlsCfg))}
	port := cfg.Port
	switch cfg.TLS {
	case "tls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS)) // the dialer did TLS already
		if port == 0 {
			port = 465
		}
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if port == 0 {
		port = 587
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return &SMTP{cfg: cfg, opts: opts}, nil
}

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := build(s.cfg.From, m)
	if err != nil {
		return err
	}
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("email: smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("email: sending to %s via %s: %w", m.To, s.cfg.Host, err)
	}
	return nil
}

// dialer connects with one deadline for the whole exchange, and does
// implicit TLS (smtp.tls: tls) itself.
func dialer(cfg SMTPConfig, tlsCfg *tls.Config) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: cfg.Timeout}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(cfg.Timeout))
		if cfg.TLS != "tls" {
			return c, nil
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
		return tc, nil
	}
}
