package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
)

// maxAppDevices bounds one person's app installs (phones, tablets), well
// above what a household uses, so a leaked password cannot mint tokens
// without end.
const maxAppDevices = 10

// mailTimeout bounds a password-reset e-mail sent after the answer.
const mailTimeout = 30 * time.Second

// appLogin signs an app user in. A temporary password (from an
// invitation) gives a session that may only choose a new password.
func (a *API) appLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := required("email", req.Email, "password", req.Password); err != nil {
		return err
	}
	ctx := r.Context()
	u, err := a.dir.UserByEmail(ctx, req.Email)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	cred, err := a.acc.LoginApp(ctx, req.Email, u.ID, req.Password)
	if err != nil {
		return err
	}
	if !cred.Temporary {
		if err := a.activate(ctx, u.ID); err != nil {
			return err
		}
	}
	tok, sess, err := a.acc.SignIn(ctx, accounts.SessionApp, string(u.ID), cred.PasswordHash)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{
		"token": tok, "expires": sess.Expires.Format(timeFormat), "must_change_password": sess.MustChangePassword,
		"user": map[string]any{"id": u.ID, "email": u.Email},
	})
}

// activate turns a user's pending memberships active: the first successful
// login with a password of their own. From then on they are rung.
// A membership removed or edited meanwhile is not undone: the memberships
// are read again and the rest activated.
func (a *API) activate(ctx context.Context, user directory.UserID) error {
	for attempt := 0; ; attempt++ {
		ms, err := a.dir.Memberships(ctx, user)
		if errors.Is(err, directory.ErrNotFound) {
			return nil // no site left
		}
		if err != nil {
			return err
		}
		var ops []directory.Op
		for _, m := range ms {
			if m.Status == directory.StatusPending {
				was := m
				m.Status = directory.StatusActive
				ops = append(ops, directory.PutMembership{Membership: m, Was: &was})
			}
		}
		if len(ops) == 0 {
			return nil
		}
		err = a.dir.Apply(ctx, ops...)
		if !errors.Is(err, directory.ErrNotFound) && !errors.Is(err, directory.ErrStale) || attempt == staleRetries {
			return err
		}
	}
}

// appPassword chooses a new password: after a temporary one without the
// current password, otherwise with it. Other sessions of the user end.
func (a *API) appPassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passwordRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := required("new_password", req.NewPassword); err != nil {
		return err
	}
	ctx := r.Context()
	if !p.sess.MustChangePassword {
		// Checked as a login is, under the account's throttle: a stolen
		// session gives no unlimited guesses at the password.
		u, err := a.dir.User(ctx, p.user)
		if err != nil {
			return err
		}
		if _, err := a.acc.LoginApp(ctx, u.Email, p.user, req.CurrentPassword); errors.Is(err, accounts.ErrBadCredentials) {
			return apiErr(http.StatusUnauthorized, "bad_credentials", "the current password is wrong")
		} else if err != nil {
			return err
		}
	}
	if err := a.acc.SetAppPassword(ctx, p.user, req.NewPassword, p.token); err != nil {
		return err
	}
	if err := a.activate(ctx, p.user); err != nil {
		return err
	}
	return noContent(w)
}

func (a *API) appLogout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := a.acc.EndSession(r.Context(), p.token); err != nil {
		return err
	}
	return noContent(w)
}

// appForgot e-mails a single-use reset link. It answers the same, at once,
// whether or not the address is known; the mail goes out afterwards.
func (a *API) appForgot(w http.ResponseWriter, r *http.Request) error {
	addr, err := decodeEmail(w, r)
	if err != nil {
		return err
	}
	u, err := a.dir.UserByEmail(r.Context(), addr)
	if err == nil {
		// Someone removed from every site has no account left to reset.
		if ms, err := a.dir.Memberships(r.Context(), u.ID); err == nil && len(ms) > 0 {
			go a.sendReset(accounts.ResetApp, string(u.ID), u.Email)
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// sendReset e-mails a reset link to an app user's (kind accounts.ResetApp,
// subject the user's ID) or an admin's (accounts.ResetAdmin, the admin's
// ID) address to. An admin's link says so (&for=admin): the /reset page
// spends it with POST /v1/admin/password/reset.
func (a *API) sendReset(kind accounts.ResetKind, subject, to string) {
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	idKey, link, msg := "user_id", "", email.PasswordReset
	if kind == accounts.ResetAdmin {
		idKey, link, msg = "admin_id", "&for=admin", email.AdminPasswordReset
	}
	tok, err := a.acc.NewResetToken(ctx, kind, subject)
	if errors.Is(err, accounts.ErrThrottled) {
		a.log.Warn("password reset e-mail not sent: too many requested", idKey, subject, "err", err)
		return
	}
	if err == nil {
		err = a.cfg.Mail.Send(ctx, msg(to, strings.TrimSuffix(a.cfg.PublicURL, "/")+"/reset#token="+tok+link))
	}
	if err != nil {
		a.log.Error("password reset e-mail failed", idKey, subject, "err", err)
	}
}

// decodeEmail reads {email}, the address given.
func decodeEmail(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		Email string `json:"email"`
	}
	if err := decode(w, r, &req); err != nil {
		return "", err
	}
	return req.Email, required("email", req.Email)
}

// resetRequest spends a reset link: {token, new_password}.
type resetRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
}

// decodeReset reads a resetRequest with both fields.
func decodeReset(w http.ResponseWriter, r *http.Request) (resetRequest, error) {
	var req resetRequest
	if err := decode(w, r, &req); err != nil {
		return req, err
	}
	return req, required("token", req.Token, "new_password", req.NewPassword)
}

// appReset spends a reset token for a new password.
func (a *API) appReset(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeReset(w, r)
	if err != nil {
		return err
	}
	user, err := a.acc.ResetPassword(r.Context(), req.Token, req.NewPassword)
	if err != nil {
		return err
	}
	// A reset may follow a stolen phone or password: every app device of
	// the user loses its token, and its live connection closes (4010); the
	// app signs in again and registers anew.
	devs, err := a.dir.UserDevices(r.Context(), user)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return err
	}
	var ops []directory.Op
	for _, d := range devs {
		ops = append(ops, directory.SetDeviceToken{ID: d.ID})
	}
	if len(ops) > 0 {
		if err := a.dir.Apply(r.Context(), ops...); err != nil {
			return err
		}
	}
	return noContent(w)
}

// appMe returns the signed-in user, their sites and their app devices.
func (a *API) appMe(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	u, err := a.dir.User(ctx, p.user)
	if err != nil {
		return err
	}
	ms, err := a.dir.Memberships(ctx, p.user)
	if err != nil {
		return err
	}
	type siteRow struct {
		Site        directory.SiteID  `json:"site_id"`
		Name        string            `json:"name"`
		Number      directory.Number  `json:"number"`
		DisplayName string            `json:"display_name"`
		Status      directory.Status  `json:"status"`
		Licence     directory.Licence `json:"licence"`
		// What the site lets its residents do from the app.
		VisitorPasses bool `json:"visitor_passes"`
		RemoteOpen    bool `json:"remote_open"`
	}
	sites := []siteRow{}
	for _, m := range ms {
		s, err := a.dir.Site(ctx, m.Site)
		if err != nil {
			continue
		}
		sites = append(sites, siteRow{Site: m.Site, Name: s.Name, Number: m.Number, DisplayName: m.DisplayName, Status: m.Status, Licence: m.Licence,
			VisitorPasses: s.Settings.VisitorPasses, RemoteOpen: s.Settings.RemoteOpen})
	}
	devs, err := a.dir.UserDevices(ctx, p.user)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"user": u, "sites": sites, "devices": a.listed(ctx, devs)})
}

// appAddDevice registers this install of the app (by name, e.g. "Anna's
// phone") and returns its token for /v1/signal. Registering a name again
// (a reinstall) issues a new token for the same device.
func (a *API) appAddDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req struct {
		Name      string `json:"name"`
		PushToken string `json:"push_token"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := required("name", req.Name); err != nil {
		return err
	}
	if err := accounts.CheckPushToken(req.PushToken); err != nil {
		return err // before the device and its token are written
	}
	ctx := r.Context()
	name := strings.TrimSpace(req.Name)
	a.registering.Lock() // the count below and the write after it, together
	defer a.registering.Unlock()
	d, err := a.dir.DeviceByName(ctx, directory.KindApp, string(p.user), name)
	var ops []directory.Op
	switch {
	case errors.Is(err, directory.ErrNotFound):
		devs, err := a.dir.UserDevices(ctx, p.user)
		if err != nil {
			return err
		}
		if len(devs) >= maxAppDevices {
			return apiErr(http.StatusConflict, "limit", "at most %d app devices per person; remove one first (DELETE /v1/app/devices/{id})", maxAppDevices)
		}
		d = directory.Device{ID: directory.DeviceID(directory.NewID("d_")), Kind: directory.KindApp, Name: name, User: p.user}
		ops = append(ops, directory.PutDevice{Device: d})
	case err != nil:
		return err
	}
	tok, hash := directory.NewToken()
	ops = append(ops, directory.SetDeviceToken{ID: d.ID, Token: hash})
	if err := a.dir.Apply(ctx, ops...); err != nil {
		return err
	}
	if req.PushToken != "" {
		if err := a.acc.SetPushToken(ctx, d.ID, req.PushToken); err != nil {
			return err
		}
	}
	return created(w, map[string]any{"device": d, "token": tok, "signal_url": "/v1/signal"})
}

// appPushToken records (or with "" clears) an app device's push token.
func (a *API) appPushToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req struct {
		PushToken string `json:"push_token"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	d, err := a.appDevice(r, p)
	if err != nil {
		return err
	}
	if err := a.acc.SetPushToken(r.Context(), d.ID, req.PushToken); err != nil {
		return err
	}
	return noContent(w)
}

// appRemoveDevice removes one of the user's app devices (a phone lost,
// sold or replaced): its token stops working, its live connection closes
// (4010, as a revoked device's), its push token goes, and it no longer
// counts towards maxAppDevices.
func (a *API) appRemoveDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	d, err := a.appDevice(r, p)
	if err != nil {
		return err
	}
	// The push token first: should the device's removal fail after it,
	// the request can be repeated, where a device gone first would leave
	// its push token behind for good.
	if err := a.acc.DropPushTokens(r.Context(), d.ID); err != nil {
		return err
	}
	if err := a.dir.Apply(r.Context(), directory.DeleteDevice{ID: d.ID}); err != nil {
		return err
	}
	return noContent(w)
}

// appDevice is the app device the request's path names, when it is the
// signed-in user's; any other is not found, as one that does not exist.
func (a *API) appDevice(r *http.Request, p *principal) (directory.Device, error) {
	d, err := a.dir.Device(r.Context(), directory.DeviceID(r.PathValue("device")))
	if err != nil || d.User != p.user { // only app devices have a user
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			return d, err
		}
		return d, errNotFound("no app device %s of yours", r.PathValue("device"))
	}
	return d, nil
}

// appCallsLimit is how many calls /v1/app/calls returns when the request
// does not say, and appCallsMax the most it may ask for (a page; older
// ones with before).
const (
	appCallsLimit = 50
	appCallsMax   = 500
)

// appCalls returns the signed-in person's call history on every site of
// theirs, newest first: each call as it ended for them (answered by them,
// answered elsewhere, declined, declined elsewhere, missed), with the
// names of the site, the door station and their device that answered.
func (a *API) appCalls(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	limit, err := queryLimit(q, appCallsLimit, appCallsMax)
	if err != nil {
		return err
	}
	before, err := parseDay(q.Get("before"))
	if err != nil {
		return errBadRequest("before: %s", err.Error())
	}
	ctx := r.Context()
	calls, err := a.acc.PersonCalls(ctx, p.user, before, limit)
	if err != nil {
		return err
	}
	type call struct {
		accounts.PersonCall
		SiteName       string `json:"site_name,omitempty"`
		DoorName       string `json:"door_name,omitempty"`
		AnsweredByName string `json:"answered_by_name,omitempty"`
	}
	sites := make(map[directory.SiteID]string)
	devices := make(map[directory.DeviceID]string)
	out := make([]call, len(calls))
	for i, c := range calls {
		out[i] = call{PersonCall: c}
		if out[i].SiteName, err = named(ctx, sites, c.Site, a.siteName); err != nil {
			return err
		}
		if out[i].DoorName, err = named(ctx, devices, c.Door, a.deviceName); err != nil {
			return err
		}
		if c.AnsweredBy != "" {
			if out[i].AnsweredByName, err = named(ctx, devices, c.AnsweredBy, a.deviceName); err != nil {
				return err
			}
		}
	}
	return ok(w, map[string]any{"calls": out})
}

// named returns the name of id, looked up once per request through look;
// what no longer exists has none.
func named[ID comparable](ctx context.Context, cache map[ID]string, id ID, look func(context.Context, ID) (string, error)) (string, error) {
	if n, ok := cache[id]; ok {
		return n, nil
	}
	n, err := look(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		n, err = "", nil
	}
	if err != nil {
		return "", err
	}
	cache[id] = n
	return n, nil
}

func (a *API) siteName(ctx context.Context, id directory.SiteID) (string, error) {
	s, err := a.dir.Site(ctx, id)
	return s.Name, err
}

func (a *API) deviceName(ctx context.Context, id directory.DeviceID) (string, error) {
	d, err := a.dir.Device(ctx, id)
	return d.Name, err
}
