package api

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type adminView struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Operator bool   `json:"operator,omitempty"`
}

type sessionView struct {
	Token     string `json:"token"`
	CSRFToken string `json:"csrf_token"`
	Expires   string `json:"expires"`
	// MustChangePassword: signed in with an invitation's temporary
	// password; the session may only choose a new one (POST
	// /v1/admin/password) or sign out.
	MustChangePassword bool      `json:"must_change_password"`
	Admin              adminView `json:"admin"`
}

// adminLogin: e-mail and password → a session, as a cookie for the portal
// and a bearer token for scripts. A temporary password (an invitation's)
// gives a session that may only choose a new one.
func (a *API) adminLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := required("email", req.Email, "password", req.Password); err != nil {
		return err
	}
	adm, err := a.acc.LoginAdmin(r.Context(), req.Email, req.Password)
	if err != nil {
		return err
	}
	tok, sess, err := a.acc.SignIn(r.Context(), accounts.SessionAdmin, adm.ID, adm.PasswordHash)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: tok, Path: "/", Expires: sess.Expires,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	return ok(w, sessionView{Token: tok, CSRFToken: sess.CSRF, Expires: sess.Expires.Format(timeFormat), MustChangePassword: sess.MustChangePassword,
		Admin: adminView{ID: adm.ID, Email: adm.Email, Operator: adm.Operator}})
}

func (a *API) adminLogout(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p.key != nil {
		return errBadRequest("an API key is revoked, not logged out")
	}
	if err := a.acc.EndSession(r.Context(), p.token); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	return noContent(w)
}

func (a *API) adminMe(w http.ResponseWriter, r *http.Request, p *principal) error {
	if p.key != nil {
		return ok(w, map[string]any{"api_key": p.key.Name, "site": p.key.Site, "role": p.key.Role})
	}
	return ok(w, map[string]any{"admin": adminView{ID: p.admin.ID, Email: p.admin.Email, Operator: p.admin.Operator}, "csrf_token": p.sess.CSRF})
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// adminPassword chooses a new password: with the current one, or without
// it in a session from a temporary password. Other sessions of the
// account end.
func (a *API) adminPassword(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passwordRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if p.key != nil {
		return errForbidden("API keys have no password")
	}
	if p.sess.MustChangePassword {
		// Signed in with the temporary password moments ago: it is not
		// asked for again, as for app accounts.
		if err := required("new_password", req.NewPassword); err != nil {
			return err
		}
	} else {
		if err := required("current_password", req.CurrentPassword, "new_password", req.NewPassword); err != nil {
			return err
		}
		// Checked as a login is, under the account's throttle: a stolen
		// session gives no unlimited guesses at the password.
		if _, err := a.acc.LoginAdmin(r.Context(), p.admin.Email, req.CurrentPassword); errors.Is(err, accounts.ErrBadCredentials) {
			return apiErr(http.StatusUnauthorized, "bad_credentials", "the current password is wrong")
		} else if err != nil {
			return err
		}
	}
	if err := a.acc.SetAdminPassword(r.Context(), p.admin.ID, req.NewPassword, p.token); err != nil {
		return err
	}
	return noContent(w)
}

// outboxList lists the e-mails written to the outbox (no SMTP server
// configured). Operators only: the mails carry temporary passwords of
// every site.
func (a *API) outboxList(w http.ResponseWriter, r *http.Request, p *principal) error {
	if a.cfg.Outbox == nil {
		return errNotFound("no outbox: e-mail goes out over SMTP")
	}
	items, err := a.cfg.Outbox.List()
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"messages": items})
}

// backup sends an operator a copy of the whole embedded store: sites,
// people, devices, accounts and logs, as of the request. Restoring it is
// `foyer admin restore` with the node stopped.
func (a *API) backup(w http.ResponseWriter, r *http.Request, p *principal) error {
	if a.cfg.Backup == nil {
		return errNotFound("no backup here: this deployment keeps its data in Redis; back Redis up (RDB snapshots or AOF)")
	}
	if !a.backingUp.TryLock() {
		return errRetry(http.StatusServiceUnavailable, "service_unavailable", 5, "a backup is being taken or sent on this node; try again once it is done")
	}
	defer a.backingUp.Unlock()
	f, err := a.cfg.Backup()
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// The whole file, never a range: each request takes a new copy, so a
	// download resumed with Range would join two different ones.
	name := "foyer-" + time.Now().UTC().Format("20060102T150405Z") + ".db"
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, f)
	if err != nil {
		// The status is sent: the client sees a body shorter than its length.
		a.log.Warn("backup not sent whole", "admin", p.admin.ID, "bytes", n, "of", st.Size(), "err", err)
		return nil
	}
	a.log.Info("backup sent", "admin", p.admin.ID, "bytes", n)
	return nil
}

// listAccounts lists every admin account for the deployment's operators:
// its e-mail, status, whether it is an operator's, and its roles by site.
func (a *API) listAccounts(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	admins, err := a.acc.Admins(ctx)
	if err != nil {
		return err
	}
	roles, err := a.acc.AllRoles(ctx)
	if err != nil {
		return err
	}
	type roleView struct {
		Site     directory.SiteID `json:"site_id"`
		SiteName string           `json:"site_name"`
		Role     accounts.Role    `json:"role"`
	}
	type accountView struct {
		ID       string     `json:"id"`
		Email    string     `json:"email"`
		Operator bool       `json:"operator"`
		Status   string     `json:"status"`
		Roles    []roleView `json:"roles"`
	}
	names := make(map[directory.SiteID]string)
	out := make([]accountView, 0, len(admins))
	for _, adm := range admins {
		v := accountView{ID: adm.ID, Email: adm.Email, Operator: adm.Operator, Status: a.adminStatus(adm), Roles: []roleView{}}
		for site, role := range roles[adm.ID] {
			name, err := named(ctx, names, site, a.siteName) // a deleted site's role: no name
			if err != nil {
				return err
			}
			v.Roles = append(v.Roles, roleView{Site: site, SiteName: name, Role: role})
		}
		slices.SortFunc(v.Roles, func(x, y roleView) int { return strings.Compare(string(x.Site), string(y.Site)) })
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y accountView) int { return strings.Compare(x.Email, y.Email) })
	return ok(w, map[string]any{"accounts": out})
}

// deleteAccount deletes an admin account for the deployment's operators
// (a property manager who left): its roles on every site, its sessions
// and reset links, its e-mail and password. Not an operator's account,
// nor a site owner's (transfer the site first): 409. Each site it had a
// role on records it in its audit log.
func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	adm, err := a.acc.Admin(ctx, r.PathValue("account"))
	if err != nil {
		return err
	}
	roles, err := a.acc.DeleteAdmin(ctx, adm.ID)
	if err != nil {
		return err
	}
	for site := range roles {
		a.audit(ctx, p, site, "admin.delete", adm.Email)
	}
	return noContent(w)
}

func (a *API) outboxRead(w http.ResponseWriter, r *http.Request, p *principal) error {
	if a.cfg.Outbox == nil {
		return errNotFound("no outbox: e-mail goes out over SMTP")
	}
	name := r.PathValue("name")
	if strings.ContainsAny(name, `/\`) {
		return errBadRequest("bad message name")
	}
	b, err := a.cfg.Outbox.Read(name)
	if err != nil {
		return errNotFound("no message %q in the outbox", name)
	}
	w.Header().Set("Content-Type", "message/rfc822")
	_, _ = w.Write(b)
	return nil
}

// adminForgot e-mails an admin a single-use reset link (PUBLIC_URL/reset
// #token=…&for=admin), as appForgot does an app user: the same answer, at
// once, whether or not the address is an account's; the mail goes out
// afterwards, and only to an account.
func (a *API) adminForgot(w http.ResponseWriter, r *http.Request) error {
	addr, err := decodeEmail(w, r)
	if err != nil {
		return err
	}
	if adm, err := a.acc.AdminByEmail(r.Context(), addr); err == nil {
		go a.sendReset(accounts.ResetAdmin, adm.ID, adm.Email)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// adminReset spends an admin's reset token for a new password: a
// temporary one (an invitation's) is replaced, and every session of the
// admin ends. An app user's token is refused as an unknown one (410).
func (a *API) adminReset(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeReset(w, r)
	if err != nil {
		return err
	}
	if _, err := a.acc.ResetAdminPassword(r.Context(), req.Token, req.NewPassword); err != nil {
		return err
	}
	return noContent(w)
}
