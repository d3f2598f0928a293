package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

// timeFormat is how the API writes times: RFC 3339 in UTC.
const timeFormat = time.RFC3339

// settingsView is a site's settings on the wire, in seconds and days.
// In a PATCH, absent fields keep their value.
type settingsView struct {
	RingTimeoutS         *int  `json:"ring_timeout_s,omitempty"`
	CallTimeLimitS       *int  `json:"call_time_limit_s,omitempty"`
	DoorOpenDurationS    *int  `json:"door_open_duration_s,omitempty"`
	LogRetentionDays     *int  `json:"log_retention_days,omitempty"`
	Preview              *bool `json:"preview,omitempty"`
	OpenDoorWhileRinging *bool `json:"open_door_while_ringing,omitempty"`
	VisitorPasses        *bool `json:"visitor_passes,omitempty"`
	RemoteOpen           *bool `json:"remote_open,omitempty"`
}

func viewSettings(s directory.Settings) settingsView {
	i := func(d time.Duration, unit time.Duration) *int { v := int(d / unit); return &v }
	b := func(v bool) *bool { return &v }
	return settingsView{
		RingTimeoutS: i(s.RingTimeout, time.Second), CallTimeLimitS: i(s.CallTimeLimit, time.Second),
		DoorOpenDurationS: i(s.DoorOpenDuration, time.Second), LogRetentionDays: i(s.LogRetention, 24*time.Hour),
		Preview: b(s.Preview), OpenDoorWhileRinging: b(s.OpenDoorWhileRinging), VisitorPasses: b(s.VisitorPasses),
		RemoteOpen: b(s.RemoteOpen),
	}
}

// apply returns s with the fields v sets, each checked against its range
// in its own unit before it is converted (a number of seconds too large
// for a duration must not wrap around into range); an error names the
// field.
func (v settingsView) apply(s directory.Settings) (directory.Settings, error) {
	fields := []struct {
		name     string
		dst      *time.Duration
		src      *int
		unit     time.Duration
		min, max time.Duration
	}{
		{"ring_timeout_s", &s.RingTimeout, v.RingTimeoutS, time.Second, directory.MinRingTimeout, directory.MaxRingTimeout},
		{"call_time_limit_s", &s.CallTimeLimit, v.CallTimeLimitS, time.Second, directory.MinCallTimeLimit, directory.MaxCallTimeLimit},
		{"door_open_duration_s", &s.DoorOpenDuration, v.DoorOpenDurationS, time.Second, directory.MinDoorOpen, directory.MaxDoorOpen},
		{"log_retention_days", &s.LogRetention, v.LogRetentionDays, 24 * time.Hour, directory.MinLogRetention, directory.MaxLogRetention},
	}
	for _, f := range fields {
		if f.src == nil {
			continue
		}
		lo, hi := int(f.min/f.unit), int(f.max/f.unit)
		if *f.src < lo || *f.src > hi {
			return s, errInvalidField("settings.%s must be %d to %d", f.name, lo, hi)
		}
		*f.dst = time.Duration(*f.src) * f.unit
	}
	if v.Preview != nil {
		s.Preview = *v.Preview
	}
	if v.OpenDoorWhileRinging != nil {
		s.OpenDoorWhileRinging = *v.OpenDoorWhileRinging
	}
	if v.VisitorPasses != nil {
		s.VisitorPasses = *v.VisitorPasses
	}
	if v.RemoteOpen != nil {
		s.RemoteOpen = *v.RemoteOpen
	}
	return s, nil
}

type siteView struct {
	ID       directory.SiteID `json:"id"`
	Name     string           `json:"name"`
	ParentID directory.SiteID `json:"parent_id,omitempty"`
	Settings settingsView     `json:"settings"`
	Role     accounts.Role    `json:"role,omitempty"`
}

func viewSite(s directory.Site, role accounts.Role) siteView {
	return siteView{ID: s.ID, Name: s.Name, ParentID: s.ParentID, Settings: viewSettings(s.Settings), Role: role}
}

type siteRequest struct {
	Name     *string          `json:"name"`
	ParentID directory.SiteID `json:"parent_id"`
	Settings *settingsView    `json:"settings"`
}

// createSite: operators create top-level sites (and become nothing more:
// they own every site already); owners and admins create sub-sites.
func (a *API) createSite(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req siteRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil || strings.TrimSpace(*req.Name) == "" {
		return errBadRequest(`missing "name"`)
	}
	ctx := r.Context()
	if req.ParentID == "" {
		if !p.admin.Operator || p.key != nil {
			return errForbidden("only the deployment's operators create top-level sites; ask for a sub-site")
		}
	} else if _, role, err := a.roleOn(ctx, p, req.ParentID); err != nil {
		return err
	} else if role.Rank() < accounts.RoleAdmin.Rank() {
		return errForbidden("creating a sub-site needs the admin role on its parent")
	}
	s := directory.Site{ID: directory.SiteID(directory.NewID("s_")), Name: strings.TrimSpace(*req.Name), ParentID: req.ParentID, Settings: directory.DefaultSettings()}
	if req.Settings != nil {
		var err error
		if s.Settings, err = req.Settings.apply(s.Settings); err != nil {
			return err
		}
	}
	if err := a.dir.Apply(ctx, directory.PutSite{Site: s}); err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "site.create", "site "+s.Name)
	_, role, err := a.roleOn(ctx, p, s.ID)
	if err != nil {
		return err
	}
	return created(w, viewSite(s, role))
}

// listSites lists the sites the principal has a role on, sub-sites included.
func (a *API) listSites(w http.ResponseWriter, r *http.Request, p *principal) error {
	all, err := a.dir.Sites(r.Context())
	if err != nil {
		return err
	}
	out := []siteView{}
	for _, s := range all {
		if _, role, err := a.roleOn(r.Context(), p, s.ID); err == nil {
			out = append(out, viewSite(s, role))
		}
	}
	slices.SortFunc(out, func(x, y siteView) int { return strings.Compare(x.Name, y.Name) })
	return ok(w, map[string]any{"sites": out})
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, role, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	return ok(w, viewSite(s, role))
}

func (a *API) patchSite(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req siteRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var s directory.Site
	var role accounts.Role
	if err := againIfStale(func() (err error) {
		// The site as it is now, its role check with it: a stale edit is
		// made again on a fresh read.
		if s, role, err = a.need(r, p, accounts.RoleAdmin); err != nil {
			return err
		}
		if req.ParentID != "" {
			return errBadRequest("parent_id cannot change; create the sub-site again under its new parent")
		}
		was := s
		if req.Name != nil {
			s.Name = strings.TrimSpace(*req.Name)
		}
		if req.Settings != nil {
			if s.Settings, err = req.Settings.apply(s.Settings); err != nil {
				return err
			}
		}
		return a.dir.Apply(r.Context(), directory.PutSite{Site: s, Was: &was})
	}); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "site.update", "name and settings")
	return ok(w, viewSite(s, role))
}

type emailRequest struct {
	Email string        `json:"email"`
	Role  accounts.Role `json:"role"`
}

// transferSite hands a site to another admin account; the old owner stays an admin.
func (a *API) transferSite(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[emailRequest](a, w, r, p, accounts.RoleOwner)
	if err != nil {
		return err
	}
	if err := required("email", req.Email); err != nil {
		return err
	}
	to, err := a.acc.AdminByEmail(r.Context(), req.Email)
	if errors.Is(err, accounts.ErrNotFound) {
		return errNotFound("no admin account with e-mail %q (invite them first: PUT …/admins)", req.Email)
	}
	if err != nil {
		return err
	}
	roles, err := a.acc.SiteRoles(r.Context(), s.ID)
	if err != nil {
		return err
	}
	from := p.admin.ID
	for id, role := range roles {
		if role == accounts.RoleOwner {
			from = id
		}
	}
	if roles[from] != accounts.RoleOwner {
		// No direct owner yet (an operator's site): just name one.
		err = a.acc.SetRole(r.Context(), s.ID, to.ID, accounts.RoleOwner)
	} else {
		err = a.acc.TransferOwnership(r.Context(), s.ID, from, to.ID)
	}
	if err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "site.transfer", "owner "+to.Email)
	return noContent(w)
}

// Admin account states in the list of a site's admins.
const (
	adminInvited = "invited" // still on the e-mailed temporary password
	// adminInvitationExpired: the temporary password is past
	// accounts.InvitationTTL; the invitation must be sent again.
	adminInvitationExpired = "expired"
	adminActive            = "active" // chose a password of their own
)

func (a *API) listSiteAdmins(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	roles, err := a.acc.SiteRoles(r.Context(), s.ID)
	if err != nil {
		return err
	}
	type row struct {
		Email  string        `json:"email"`
		Role   accounts.Role `json:"role"`
		Status string        `json:"status"`
	}
	out := []row{}
	for id, role := range roles {
		adm, err := a.acc.Admin(r.Context(), id)
		if err == nil {
			out = append(out, row{Email: adm.Email, Role: role, Status: a.adminStatus(adm)})
		}
	}
	slices.SortFunc(out, func(x, y row) int { return strings.Compare(x.Email, y.Email) })
	return ok(w, map[string]any{"admins": out})
}

// adminStatus is an account's status as the lists show it.
func (a *API) adminStatus(adm accounts.Admin) string {
	switch {
	case adm.InvitationExpired(a.acc.Now()):
		return adminInvitationExpired
	case adm.TemporaryPassword:
		return adminInvited
	}
	return adminActive
}

// invitationView answers a grant that invited a new account, and an
// invitation sent again.
type invitationView struct {
	Email      string        `json:"email"`
	Role       accounts.Role `json:"role"`
	Status     string        `json:"status"`
	Invitation string        `json:"invitation"`
	// EmailError reports an invitation that could not be sent (the
	// account and its role stay; send it again later).
	EmailError string `json:"email_error,omitempty"`
}

// putSiteAdmin grants (or with role "" removes) an admin's role on a site;
// owners only, and ownership moves only by transfer. An e-mail address
// with no admin account is invited: an account is made for it, with the
// role and a temporary password, which is e-mailed (201).
func (a *API) putSiteAdmin(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[emailRequest](a, w, r, p, accounts.RoleOwner)
	if err != nil {
		return err
	}
	if req.Role == accounts.RoleOwner {
		return errBadRequest("ownership moves by POST /v1/sites/{site}/transfer")
	}
	if req.Role != "" && !req.Role.Valid() {
		return errBadRequest("role %q: want admin, installer, viewer or \"\" to remove", req.Role)
	}
	if err := required("email", req.Email); err != nil {
		return err
	}
	addr, err := accounts.NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := r.Context()
	adm, err := a.acc.AdminByEmail(ctx, addr)
	if errors.Is(err, accounts.ErrNotFound) && req.Role != "" {
		// Another grant to the same address may make the account first:
		// then this one grants to it like to any account.
		if err = a.inviteAdmin(w, r, p, s, addr, req.Role); !errors.Is(err, accounts.ErrConflict) {
			return err
		}
		adm, err = a.acc.AdminByEmail(ctx, addr)
	}
	if errors.Is(err, accounts.ErrNotFound) && req.Role == "" {
		// Nothing to remove: answered as for an account with no role here,
		// so that a site's owner learns nothing of other sites' people.
		return noContent(w)
	}
	if errors.Is(err, accounts.ErrNotFound) {
		return errNotFound("no admin account with e-mail %q", addr)
	}
	if err != nil {
		return err
	}
	roles, err := a.acc.SiteRoles(ctx, s.ID)
	if err != nil {
		return err
	}
	if roles[adm.ID] == accounts.RoleOwner {
		return errBadRequest("%s owns the site; transfer ownership first", adm.Email)
	}
	if err := a.acc.SetRole(ctx, s.ID, adm.ID, req.Role); err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "site.role", adm.Email+" → "+string(req.Role))
	return noContent(w)
}

// inviteAdmin makes an admin account for addr with role on s and e-mails
// its temporary password, answering 201. The account and its role stay
// when the mail fails: the answer says so (email_error), and the owner
// sends it again with POST …/admins/invitation. ErrConflict, with nothing
// written, when an account with addr exists (made meanwhile).
func (a *API) inviteAdmin(w http.ResponseWriter, r *http.Request, p *principal, s directory.Site, addr string, role accounts.Role) error {
	ctx := r.Context()
	adm, temp, err := a.acc.InviteAdmin(ctx, addr, s.ID, role)
	if err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "admin.invite", adm.Email+" as "+string(role))
	v := invitationView{Email: adm.Email, Role: role, Status: adminInvited}
	a.mailAdminInvitation(ctx, s, adm, role, temp, &v)
	return created(w, v)
}

// mailAdminInvitation e-mails an admin's temporary password and records
// in v whether it went. What went wrong stays in the log: the mail
// server's name and answer are the operator's business.
func (a *API) mailAdminInvitation(ctx context.Context, s directory.Site, adm accounts.Admin, role accounts.Role, temp string, v *invitationView) {
	portal := strings.TrimSuffix(a.cfg.PublicURL, "/") + "/admin"
	if err := a.cfg.Mail.Send(ctx, email.AdminInvitation(adm.Email, s.Name, string(role), temp, portal)); err != nil {
		a.log.Error("admin invitation e-mail failed", "admin_id", adm.ID, "err", err)
		v.Invitation = invitationNotSent
		v.EmailError = "the invitation could not be sent (the account was made and the role granted; send it again with POST /v1/sites/{site}/admins/invitation; the operator's log says why)"
		return
	}
	v.Invitation = invitationSent
}

// sendAdminInvitation sends an invited admin's invitation again, with a
// new temporary password (the earlier one stops working); owners only,
// for an account with a role on the site that has not chosen a password.
func (a *API) sendAdminInvitation(w http.ResponseWriter, r *http.Request, p *principal) error {
	given, err := decodeEmail(w, r)
	if err != nil {
		return err
	}
	s, _, err := a.need(r, p, accounts.RoleOwner)
	if err != nil {
		return err
	}
	addr, err := accounts.NormalizeEmail(given)
	if err != nil {
		return err
	}
	ctx := r.Context()
	adm, err := a.acc.AdminByEmail(ctx, addr)
	if errors.Is(err, accounts.ErrNotFound) {
		return errNotFound("no admin account with e-mail %q has a role on this site", addr)
	}
	if err != nil {
		return err
	}
	roles, err := a.acc.SiteRoles(ctx, s.ID)
	if err != nil {
		return err
	}
	role := roles[adm.ID]
	if role == "" {
		return errNotFound("no admin account with e-mail %q has a role on this site", addr)
	}
	temp, err := a.acc.SetAdminTempPassword(ctx, adm.ID, s.ID)
	if errors.Is(err, accounts.ErrConflict) {
		return apiErr(http.StatusConflict, "already_active", "%s has already chosen a password", adm.Email)
	}
	if errors.Is(err, accounts.ErrNotInviter) {
		return errForbidden("%s was invited by another site; only its owners send the invitation again", adm.Email)
	}
	if err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "admin.invite", adm.Email+" as "+string(role)+" (sent again)")
	v := invitationView{Email: adm.Email, Role: role, Status: adminInvited}
	a.mailAdminInvitation(ctx, s, adm, role, temp, &v)
	return ok(w, v)
}

type apiKeyRequest struct {
	Name string        `json:"name"`
	Role accounts.Role `json:"role"`
}

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, role, err := decodeNeed[apiKeyRequest](a, w, r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if req.Role.Rank() > role.Rank() {
		return errForbidden("a key cannot have more rights than you (%s)", role)
	}
	tok, k, err := a.acc.CreateAPIKey(r.Context(), s.ID, req.Name, req.Role)
	if err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "api_key.create", k.Name)
	return created(w, map[string]any{"key": tok, "api_key": k})
}

func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	keys, err := a.acc.APIKeys(r.Context(), s.ID)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"api_keys": jsonarray.Of(keys)})
}

func (a *API) deleteAPIKey(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if err := a.acc.DeleteAPIKey(r.Context(), s.ID, r.PathValue("id")); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "api_key.delete", r.PathValue("id"))
	return noContent(w)
}

func (a *API) listEntries(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	es, err := a.dir.Entries(r.Context(), s.ID)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"entries": jsonarray.Of(es)})
}

func (a *API) putEntry(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	e := directory.Entry{Site: s.ID, Number: directory.Number(r.PathValue("number")), Name: strings.TrimSpace(req.Name)}
	if err := a.dir.Apply(r.Context(), directory.PutEntry{Entry: e}); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "entry.put", string(e.Number)+" "+e.Name)
	return ok(w, e)
}

func (a *API) deleteEntry(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	n := directory.Number(r.PathValue("number"))
	if err := a.dir.Apply(r.Context(), directory.DeleteEntry{Site: s.ID, Number: n}); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "entry.delete", string(n))
	return noContent(w)
}
