package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/signaling"
)

// outboxDir is where e-mail goes, inside data_dir, when no SMTP server is set.
const outboxDir = "outbox"

// accountSide is the account half of a node: the records, the journal of
// call and door events, and the mail.
type accountSide struct {
	acc     *accounts.Store
	journal *accounts.Journal
	mail    api.Mailer
	outbox  *email.Outbox // nil when mail goes over SMTP
	// backup copies the embedded store for GET /v1/backup; nil with Redis.
	backup func() (*os.File, error)
}

func openAccountSide(cfg Config, b *backend, log *slog.Logger) (*accountSide, error) {
	s := &accountSide{acc: accounts.New(b.records, nil)}
	if b.bolt != nil {
		// Into data_dir: the store's own disk, private to the server.
		s.backup = func() (*os.File, error) { return b.bolt.Backup(cfg.DataDir) }
	}
	s.journal = accounts.NewJournal(s.acc, log.With("component", "journal"))
	if cfg.SMTP.Host != "" {
		m, err := email.NewSMTP(email.SMTPConfig{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username, Password: cfg.SMTP.Password,
			From: cfg.SMTP.From, TLS: cfg.SMTP.TLS, Timeout: cfg.SMTP.Timeout,
		})
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		s.mail = m
		return s, nil
	}
	o, err := email.NewOutbox(filepath.Join(cfg.DataDir, outboxDir), cfg.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	s.mail, s.outbox = o, o
	return s, nil
}

// droppedCollector exposes how many log entries the journal dropped
// because its queue was full (the store fell behind a call storm).
func (s *accountSide) droppedCollector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "foyer_log_entries_dropped_total",
		Help: "Call, door, access and audit log entries dropped because the queue to the store was full.",
	}, func() float64 { return float64(s.journal.Dropped()) })
}

// hook connects the signalling hub to the access codes and the logs.
// It returns the door stations' alerts, whose gauge the caller registers.
func (s *accountSide) hook(c *signaling.Config, cfg Config, store directory.Store, log *slog.Logger) *api.DoorAlerts {
	api.HookSignaling(c, s.acc, s.journal)
	alerts := &api.DoorAlerts{Directory: store, Accounts: s.acc, Mail: s.mail, PublicURL: cfg.PublicURL, After: cfg.Signaling.DoorOfflineAfter, Log: log.With("component", "door-alerts")}
	alerts.Hook(c)
	return alerts
}

// api builds the HTTP API on this side.
func (s *accountSide) api(cfg Config, store directory.Store, hub *signaling.Hub, reg prometheus.Registerer, log *slog.Logger) (*api.API, error) {
	return api.New(api.Config{
		Directory: store, Accounts: s.acc, Mail: s.mail, Outbox: s.outbox, PublicURL: cfg.PublicURL, LiveCalls: hub.LiveCalls, Connected: hub.Connected, OpenDoor: hub.OpenDoor,
		AllowedOrigins: cfg.AllowedOrigins, SecureCookies: cfg.SecureCookies, Log: log.With("component", "api"), Metrics: reg, Backup: s.backup,
	})
}
