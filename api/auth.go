package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// sessionCookie carries the portal's session; scripts send the same token
// as Authorization: Bearer.
const sessionCookie = "foyer_session"

// principal is who sent a request.
type principal struct {
	kind  accounts.SessionKind
	token string // the session token or API key
	sess  accounts.Session
	// admin is set for admin sessions; key for API keys (kind admin too).
	admin accounts.Admin
	key   *accounts.APIKey
	// user is set for app sessions.
	user directory.UserID
}

// name says who acted, for the audit log: an e-mail or an API key's name.
func (p *principal) name() string {
	if p.key != nil {
		return "api-key:" + p.key.Name
	}
	return p.admin.Email
}

// bearer returns the token of an Authorization header ("Bearer" in any
// case, RFC 7235 §2.1), or "" and whether a header was present.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// authenticate finds the principal of r, which must be of one of kinds.
// Cookie-authenticated writes must also carry the session's CSRF token and
// come from an allowed origin.
func (a *API) authenticate(r *http.Request, kinds []accounts.SessionKind) (*principal, error) {
	tok, hasHeader := bearer(r)
	viaCookie := false
	if !hasHeader {
		if c, err := r.Cookie(sessionCookie); err == nil {
			tok, viaCookie = c.Value, true
		}
	}
	if tok == "" {
		return nil, errUnauthenticated
	}
	ctx := r.Context()
	p := &principal{token: tok}
	if accounts.IsAPIKey(tok) {
		k, err := a.acc.APIKeyByToken(ctx, tok)
		if err != nil {
			return nil, unauthenticated(err)
		}
		p.kind, p.key = accounts.SessionAdmin, &k
	} else {
		sess, err := a.acc.SessionByToken(ctx, tok)
		if err != nil {
			return nil, unauthenticated(err)
		}
		p.kind, p.sess = sess.Kind, sess
		switch sess.Kind {
		case accounts.SessionAdmin:
			if p.admin, err = a.acc.Admin(ctx, sess.Subject); err != nil {
				return nil, unauthenticated(err)
			}
		case accounts.SessionApp:
			p.user = directory.UserID(sess.Subject)
		}
	}
	if !slices.Contains(kinds, p.kind) {
		return nil, errForbidden("this endpoint is not for %s sessions", p.kind)
	}
	if viaCookie && !safeMethod(r.Method) {
		if err := a.checkCSRF(r, p.sess); err != nil {
			return nil, err
		}
	}
	if p.sess.MustChangePassword && !whileMustChange[r.Pattern] {
		return nil, passwordChangeRequired(p.kind)
	}
	return p, nil
}

// whileMustChange is what a session signed in with a temporary password
// (an invitation's) may do: choose a password, or sign out.
var whileMustChange = map[string]bool{
	"POST /v1/app/password":   true,
	"POST /v1/app/logout":     true,
	"POST /v1/admin/password": true,
	"POST /v1/admin/logout":   true,
}

func unauthenticated(err error) error {
	if errors.Is(err, accounts.ErrNotFound) || errors.Is(err, accounts.ErrExpired) {
		return apiErr(http.StatusUnauthorized, "unauthenticated", "the session has ended or the key is not valid; sign in again")
	}
	return err
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF: a cookie-authenticated write must echo the session's CSRF
// token in X-CSRF-Token, and its Origin (when the browser sends one) must
// be this host or an allowed origin.
func (a *API) checkCSRF(r *http.Request, sess accounts.Session) error {
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || (u.Host != r.Host && !slices.Contains(a.self, origin)) {
			return errForbidden("origin %q may not use this session", origin)
		}
	}
	if got := r.Header.Get("X-CSRF-Token"); got == "" || got != sess.CSRF {
		return errForbidden("missing or wrong X-CSRF-Token")
	}
	return nil
}

// roleOn returns the principal's role on site: its own role there or on
// the nearest ancestor, whichever is higher; operators own every site. A
// site the principal has no role on answers not found, as if it did not
// exist, so other sites' existence does not leak.
func (a *API) roleOn(ctx context.Context, p *principal, site directory.SiteID) (directory.Site, accounts.Role, error) {
	s, err := a.dir.Site(ctx, site)
	if errors.Is(err, directory.ErrNotFound) {
		return directory.Site{}, "", errNotFound("site %s not found", site)
	}
	if err != nil {
		return directory.Site{}, "", err
	}
	if p.key != nil {
		for cur := s; ; {
			if cur.ID == p.key.Site {
				return s, p.key.Role, nil
			}
			if cur.ParentID == "" {
				return directory.Site{}, "", errNotFound("site %s not found", site)
			}
			if cur, err = a.dir.Site(ctx, cur.ParentID); err != nil {
				return directory.Site{}, "", err
			}
		}
	}
	if p.admin.Operator {
		return s, accounts.RoleOwner, nil
	}
	roles, err := a.acc.RolesOf(ctx, p.admin.ID)
	if err != nil {
		return directory.Site{}, "", err
	}
	best := accounts.Role("")
	for cur := s; ; {
		if r := roles[cur.ID]; r.Rank() > best.Rank() {
			best = r
		}
		if cur.ParentID == "" {
			break
		}
		if cur, err = a.dir.Site(ctx, cur.ParentID); err != nil {
			return directory.Site{}, "", err
		}
	}
	if best == "" {
		return directory.Site{}, "", errNotFound("site %s not found", site)
	}
	return s, best, nil
}

// need returns the site when the principal's role on it is at least min.
func (a *API) need(r *http.Request, p *principal, min accounts.Role) (directory.Site, accounts.Role, error) {
	s, role, err := a.roleOn(r.Context(), p, directory.SiteID(r.PathValue("site")))
	if err != nil {
		return s, role, err
	}
	if role.Rank() < min.Rank() {
		return s, role, errForbidden("this needs the %s role on site %q; you are %s", min, s.Name, role)
	}
	return s, role, nil
}

// decodeNeed decodes a request's JSON body into a T (decode), then
// checks the principal's role on the path's site (need): a malformed body
// is answered before the role is looked at, for every handler alike.
func decodeNeed[T any](a *API, w http.ResponseWriter, r *http.Request, p *principal, min accounts.Role) (req T, s directory.Site, role accounts.Role, err error) {
	if err = decode(w, r, &req); err != nil {
		return req, s, role, err
	}
	s, role, err = a.need(r, p, min)
	return req, s, role, err
}

// audit records an admin change in the site's audit log. A failure to log
// is reported, not returned: the change itself has been made.
func (a *API) audit(ctx context.Context, p *principal, site directory.SiteID, action, details string) {
	a.auditAs(ctx, p.name(), site, action, details)
}

// auditAs records an admin change in the site's audit log under actor.
func (a *API) auditAs(ctx context.Context, actor string, site directory.SiteID, action, details string) {
	a.auditEvent(ctx, accounts.Event{Site: site, Kind: accounts.EventAudit, Actor: actor, Outcome: action, Details: details})
}

// auditEvent records e, a change, in its site's audit log.
func (a *API) auditEvent(ctx context.Context, e accounts.Event) {
	if err := a.acc.Log(ctx, e); err != nil {
		a.log.Error("audit log write failed", "site", e.Site, "action", e.Outcome, "err", err)
	}
}
