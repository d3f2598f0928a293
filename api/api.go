// Package api is foyer's HTTP JSON API under /v1: admin accounts and
// roles, sites, app users (with invitations and CSV import/export), app
// accounts, door stations and monitors with provisioning, access codes,
// and the logs. The admin portal (web/) is a client of it.
//
// Every request is authenticated in one place (auth.go), every error is
// mapped to a status and a stable code in one place (errors.go), and every
// body is read with a size limit and strict JSON decoding (json.go).
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/keylimit"
	"github.com/foyer-intercom/foyer/signaling"
)

// Mailer sends e-mail: *email.SMTP, or *email.Outbox when no SMTP server
// is configured.
type Mailer interface {
	Send(ctx context.Context, m email.Message) error
}

// Config is what the API needs; cmd/foyer composes it.
type Config struct {
	Directory directory.Store
	Accounts  *accounts.Store
	Mail      Mailer
	// Outbox, when set, is listed at /v1/outbox for operators.
	Outbox *email.Outbox
	// LiveCalls lists a site's calls in progress on every node (the
	// signalling hub's LiveCalls); nil: none known.
	LiveCalls func(ctx context.Context, site directory.SiteID) signaling.LiveCalls
	// Connected reports which of ids are connected (the signalling hub's
	// Connected); nil: not known, and device lists say nothing of it.
	Connected Connected
	// OpenDoor sends a door station an unlock for d outside a call (the
	// signalling hub's OpenDoor: signaling.ErrDoorOffline when it is not
	// connected); nil: residents cannot open doors from the app here.
	OpenDoor func(ctx context.Context, door directory.DeviceID, d time.Duration) error
	// PublicURL is where people reach this deployment, for links in e-mails
	// (e.g. https://intercom.example.com). Default http://localhost:8080.
	PublicURL string
	// AllowedOrigins may send cookie-authenticated writes besides the
	// request's own host (the portal is served from the same origin).
	AllowedOrigins []string
	// SecureCookies marks the session cookie Secure (behind TLS).
	SecureCookies bool
	// Log receives request errors; never secrets.
	Log *slog.Logger
	// RequestTimeout bounds one request's store work. Default 10 s (a CSV
	// import of 10,000 rows included).
	RequestTimeout time.Duration
	// Backup, when set, returns a consistent copy of the embedded store's
	// file, open at its start and removed from its directory
	// ((*directory.Bolt).Backup), served to operators at GET /v1/backup.
	// Nil with Redis: its data is backed up with Redis's own means.
	Backup func() (*os.File, error)
	// Metrics, when set, receives the request metrics (metrics.go).
	Metrics prometheus.Registerer
}

// Connected reports which of ids are connected to any node: the
// signalling hub's Connected.
type Connected func(ctx context.Context, ids []directory.DeviceID) map[directory.DeviceID]bool

// API serves /v1.
type API struct {
	// Immutable after construction.
	cfg  Config
	dir  directory.Store
	acc  *accounts.Store
	log  *slog.Logger
	mux  *http.ServeMux
	self []string // origins allowed for cookie writes, besides the request host
	m    *metrics // nil: none

	// registering: one app device registration at a time on this node, so
	// that maxAppDevices holds against registrations at the same moment.
	registering sync.Mutex
	// backingUp: one backup at a time on this node, for as long as it is
	// sent; each holds a copy of the whole store on disk meanwhile.
	backingUp sync.Mutex
	// openings bounds each person's door openings from the app on this node.
	openings *keylimit.Limiter[directory.UserID]
}

// New returns the API for cfg.
func New(cfg Config) (*API, error) {
	if cfg.Directory == nil || cfg.Accounts == nil || cfg.Mail == nil {
		return nil, errors.New("api: Directory, Accounts and Mail are required")
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://localhost:8080"
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, dir: cfg.Directory, acc: cfg.Accounts, log: cfg.Log, mux: http.NewServeMux(), self: cfg.AllowedOrigins,
		openings: keylimit.New[directory.UserID](openingsPerSecond, openingsBurst, time.Minute)}
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics)
		if err != nil {
			return nil, err
		}
		a.m = m
	}
	a.routes()
	return a, nil
}

// ServeHTTP serves every /v1 route except /v1/signal (the WebSocket).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.RequestTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	r = r.WithContext(ctx)
	a.mux.ServeHTTP(rec, r)
	// The route pattern, never the path or query: paths carry IDs, and
	// nothing a client sends is logged verbatim.
	took := time.Since(start)
	a.m.observe(r.Pattern, rec.status, took)
	a.log.Debug("api request", "method", r.Method, "route", r.Pattern, "status", rec.status, "ms", took.Milliseconds())
}

// statusRecorder remembers the status a handler wrote, for the request
// log and metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// handler is a route: it returns an error the API maps to a response.
type handler func(w http.ResponseWriter, r *http.Request) error

// guarded is a route that needs a signed-in principal.
type guarded func(w http.ResponseWriter, r *http.Request, p *principal) error

func (a *API) handle(pattern string, h handler) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// handleAuth registers a route for a signed-in principal of one of kinds.
func (a *API) handleAuth(pattern string, h guarded, kinds ...accounts.SessionKind) {
	a.handle(pattern, func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.authenticate(r, kinds)
		if err != nil {
			return err
		}
		return h(w, r, p)
	})
}

// handleOperator routes pattern to h for the deployment's operators only,
// signed in: an API key is a site's, never an operator's.
func (a *API) handleOperator(pattern string, h guarded) {
	a.handleAuth(pattern, func(w http.ResponseWriter, r *http.Request, p *principal) error {
		if !p.admin.Operator || p.key != nil {
			return errForbidden("%s is for the deployment's operators, signed in", pattern)
		}
		return h(w, r, p)
	}, accounts.SessionAdmin)
}

func (a *API) routes() {
	adm := accounts.SessionAdmin
	app := accounts.SessionApp

	a.handle("POST /v1/admin/login", a.adminLogin)
	a.handle("POST /v1/admin/password/forgot", a.adminForgot)
	a.handle("POST /v1/admin/password/reset", a.adminReset)
	a.handleAuth("POST /v1/admin/logout", a.adminLogout, adm)
	a.handleAuth("GET /v1/admin/me", a.adminMe, adm)
	a.handleAuth("POST /v1/admin/password", a.adminPassword, adm)
	a.handleOperator("GET /v1/admin/accounts", a.listAccounts)
	a.handleOperator("DELETE /v1/admin/accounts/{account}", a.deleteAccount)
	a.handleOperator("GET /v1/outbox", a.outboxList)
	a.handleOperator("GET /v1/outbox/{name}", a.outboxRead)
	a.handleOperator("GET /v1/backup", a.backup)

	a.handleAuth("POST /v1/sites", a.createSite, adm)
	a.handleAuth("GET /v1/sites", a.listSites, adm)
	a.handleAuth("GET /v1/sites/{site}", a.getSite, adm)
	a.handleAuth("PATCH /v1/sites/{site}", a.patchSite, adm)
	a.handleAuth("POST /v1/sites/{site}/transfer", a.transferSite, adm)
	a.handleAuth("GET /v1/sites/{site}/admins", a.listSiteAdmins, adm)
	a.handleAuth("PUT /v1/sites/{site}/admins", a.putSiteAdmin, adm)
	a.handleAuth("POST /v1/sites/{site}/admins/invitation", a.sendAdminInvitation, adm)
	a.handleAuth("POST /v1/sites/{site}/api-keys", a.createAPIKey, adm)
	a.handleAuth("GET /v1/sites/{site}/api-keys", a.listAPIKeys, adm)
	a.handleAuth("DELETE /v1/sites/{site}/api-keys/{id}", a.deleteAPIKey, adm)

	a.handleAuth("GET /v1/sites/{site}/entries", a.listEntries, adm)
	a.handleAuth("PUT /v1/sites/{site}/entries/{number}", a.putEntry, adm)
	a.handleAuth("DELETE /v1/sites/{site}/entries/{number}", a.deleteEntry, adm)

	a.handleAuth("POST /v1/sites/{site}/users", a.addUser, adm)
	a.handleAuth("GET /v1/sites/{site}/users", a.listUsers, adm)
	a.handleAuth("GET /v1/sites/{site}/users/export", a.exportUsers, adm)
	a.handleAuth("POST /v1/sites/{site}/users/import", a.importUsers, adm)
	a.handleAuth("POST /v1/sites/{site}/users/delete", a.deleteUsers, adm)
	a.handleAuth("GET /v1/sites/{site}/users/{user}", a.getUser, adm)
	a.handleAuth("PATCH /v1/sites/{site}/users/{user}", a.patchUser, adm)
	a.handleAuth("DELETE /v1/sites/{site}/users/{user}", a.deleteUser, adm)
	a.handleAuth("POST /v1/sites/{site}/users/{user}/invitation", a.sendInvitation, adm)

	a.handleAuth("POST /v1/sites/{site}/devices", a.createDevice, adm)
	a.handleAuth("GET /v1/sites/{site}/devices", a.listDevices, adm)
	a.handleAuth("PATCH /v1/sites/{site}/devices/{device}", a.patchDevice, adm)
	a.handleAuth("DELETE /v1/sites/{site}/devices/{device}", a.revokeDevice, adm)
	a.handleAuth("POST /v1/sites/{site}/devices/{device}/provisioning", a.reprovisionDevice, adm)
	a.handleAuth("GET /v1/sites/{site}/calling-doors", a.listCallingDoors, adm)
	a.handleAuth("DELETE /v1/sites/{site}/calling-doors/{device}", a.revokeCallingDoor, adm)
	a.handle("POST /v1/provision", a.provision)

	a.handleAuth("POST /v1/sites/{site}/codes", a.createCode, adm)
	a.handleAuth("GET /v1/sites/{site}/codes", a.listCodes, adm)
	a.handleAuth("DELETE /v1/sites/{site}/codes/{code}", a.deleteCode, adm)

	a.handleAuth("GET /v1/sites/{site}/logs/{kind}", a.listEvents, adm)
	a.handleAuth("GET /v1/sites/{site}/calls", a.liveCalls, adm)

	a.handle("POST /v1/app/login", a.appLogin)
	a.handle("POST /v1/app/password/forgot", a.appForgot)
	a.handle("POST /v1/app/password/reset", a.appReset)
	a.handleAuth("POST /v1/app/password", a.appPassword, app)
	a.handleAuth("POST /v1/app/logout", a.appLogout, app)
	a.handleAuth("GET /v1/app/me", a.appMe, app)
	a.handleAuth("GET /v1/app/calls", a.appCalls, app)
	a.handleAuth("POST /v1/app/sites/{site}/passes", a.createPass, app)
	a.handleAuth("GET /v1/app/sites/{site}/passes", a.listPasses, app)
	a.handleAuth("GET /v1/app/sites/{site}/doors", a.appDoors, app)
	a.handleAuth("POST /v1/app/sites/{site}/doors/{door}/open", a.appOpenDoor, app)
	a.handleAuth("DELETE /v1/app/sites/{site}/passes/{pass}", a.deletePass, app)
	a.handleAuth("POST /v1/app/devices", a.appAddDevice, app)
	a.handleAuth("PUT /v1/app/devices/{device}/push-token", a.appPushToken, app)
	a.handleAuth("DELETE /v1/app/devices/{device}", a.appRemoveDevice, app)

	a.handle("/v1/", func(w http.ResponseWriter, r *http.Request) error {
		return errNotFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	})
}
