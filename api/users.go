package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

// Invitation states of an app user, from their app credential.
const (
	invitationNotSent  = "not_sent" // no e-mail yet (added with send_invitation false)
	invitationSent     = "sent"     // a temporary password is out
	invitationAccepted = "accepted" // the user chose a password
	invitationExpired  = "expired"  // the temporary password is past accounts.InvitationTTL: send it again
)

type userView struct {
	ID          directory.UserID  `json:"id"`
	Email       string            `json:"email"`
	Number      directory.Number  `json:"number"`
	DisplayName string            `json:"display_name"`
	Licence     directory.Licence `json:"licence"`
	Status      directory.Status  `json:"status"`
	Tags        []string          `json:"tags"`
	Invitation  string            `json:"invitation"`
	// EmailError reports an invitation that could not be sent (the user
	// was added; resend it later).
	EmailError string `json:"email_error,omitempty"`
}

// userRequest adds or edits an app user; in a PATCH, absent fields keep
// their value.
type userRequest struct {
	Email          *string            `json:"email"`
	Number         *directory.Number  `json:"number"`
	DisplayName    *string            `json:"display_name"`
	Licence        *directory.Licence `json:"licence"`
	Tags           *[]string          `json:"tags"`
	SendInvitation *bool              `json:"send_invitation"`
}

func (a *API) invitationState(ctx context.Context, u directory.UserID) (string, error) {
	c, err := a.acc.AppCredential(ctx, u)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		return invitationNotSent, nil
	case err != nil:
		return "", err
	case c.InvitationExpired(a.acc.Now()):
		return invitationExpired, nil
	case c.Temporary:
		return invitationSent, nil
	}
	return invitationAccepted, nil
}

func (a *API) viewUser(ctx context.Context, m directory.Membership, tags []string) (userView, error) {
	u, err := a.dir.User(ctx, m.User)
	if err != nil {
		return userView{}, err
	}
	inv, err := a.invitationState(ctx, m.User)
	if err != nil {
		return userView{}, err
	}
	return userView{ID: u.ID, Email: u.Email, Number: m.Number, DisplayName: m.DisplayName, Licence: m.Licence, Status: m.Status, Tags: jsonarray.Of(tags), Invitation: inv}, nil
}

// membership returns a user's membership of site, or not found.
func (a *API) membership(ctx context.Context, site directory.SiteID, user directory.UserID) (directory.Membership, error) {
	ms, err := a.dir.Memberships(ctx, user)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return directory.Membership{}, err
	}
	for _, m := range ms {
		if m.Site == site {
			return m, nil
		}
	}
	return directory.Membership{}, errNotFound("no app user %s in this site", user)
}

// addUser adds an app user to a site: a new person gets an invitation with
// a temporary password (unless send_invitation is false); a person who
// already uses the app is added active at once and told by e-mail.
func (a *API) addUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[userRequest](a, w, r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if req.Email == nil || req.Number == nil || req.DisplayName == nil {
		return errBadRequest(`"email", "number" and "display_name" are required`)
	}
	row := importRow{Email: *req.Email, Number: *req.Number, DisplayName: strings.TrimSpace(*req.DisplayName), Licence: directory.LicenceActive}
	if req.Licence != nil {
		row.Licence = *req.Licence
	}
	if req.Tags != nil {
		row.Tags = *req.Tags
	}
	if err := row.normalize(); err != nil {
		return err
	}
	ctx := r.Context()
	plan, err := a.planRows(ctx, s, []importRow{row}, false)
	if err != nil {
		return err
	}
	if err := a.applyPlan(ctx, s, plan); err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "user.add", row.Email+" on "+string(row.Number))
	m := plan.members[0]
	v, err := a.viewUser(ctx, m, row.Tags)
	if err != nil {
		return err
	}
	if m.Status == directory.StatusActive {
		// Already an app user elsewhere: the site appears in their app
		// now (the directory change reaches their connections); tell them.
		// What went wrong stays in the log: the mail server's name and
		// answer are the operator's business, not the site's admins'.
		if err := a.cfg.Mail.Send(ctx, email.SiteAdded(v.Email, s.Name)); err != nil {
			a.log.Error("site-added e-mail failed", "user_id", m.User, "err", err)
			v.EmailError = "the confirmation e-mail could not be sent (the operator's log says why)"
		}
	} else if req.SendInvitation == nil || *req.SendInvitation {
		if err := a.invite(ctx, s, &v); err != nil {
			a.log.Error("invitation failed", "user_id", m.User, "err", err)
			v.EmailError = "the invitation could not be sent (the user was added; send it again later; the operator's log says why)"
		}
	}
	return created(w, v)
}

// invite sets a fresh temporary password for the user v shows and e-mails
// it, recording in v whether it went: a mail that failed is logged and
// told as email_error (the mail server's name and answer are the
// operator's business, not the site's admins'). The error is the store's.
func (a *API) invite(ctx context.Context, s directory.Site, v *userView) error {
	temp, err := a.acc.SetTempPassword(ctx, v.ID)
	if err != nil {
		return err
	}
	if err := a.cfg.Mail.Send(ctx, email.Invitation(v.Email, s.Name, temp, a.cfg.PublicURL)); err != nil {
		a.log.Error("invitation e-mail failed", "user_id", v.ID, "err", err)
		v.Invitation = invitationNotSent
		v.EmailError = "the invitation could not be sent (send it again later; the operator's log says why)"
		return nil
	}
	v.Invitation = invitationSent
	return nil
}

// sendInvitation sends (or resends) a pending user's invitation with a new
// temporary password.
func (a *API) sendInvitation(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	ctx := r.Context()
	m, err := a.membership(ctx, s.ID, directory.UserID(r.PathValue("user")))
	if err != nil {
		return err
	}
	v, err := a.viewUser(ctx, m, nil)
	if err != nil {
		return err
	}
	if err := a.invite(ctx, s, &v); err != nil {
		if errors.Is(err, accounts.ErrConflict) {
			return apiErr(http.StatusConflict, "already_active", "%s has already chosen a password; they can use “forgot password”", v.Email)
		}
		return err
	}
	a.audit(ctx, p, s.ID, "user.invite", v.Email)
	return ok(w, v)
}

// userFilter is the query of a user list.
type userFilter struct {
	status, licence, tag, text, invitation string
	number                                 directory.Number
}

func (f userFilter) match(v userView) bool {
	switch {
	case f.status != "" && string(v.Status) != f.status,
		f.licence != "" && string(v.Licence) != f.licence,
		f.number != "" && v.Number != f.number,
		f.invitation != "" && v.Invitation != f.invitation,
		f.tag != "" && !slices.Contains(v.Tags, f.tag):
		return false
	case f.text != "":
		t := strings.ToLower(f.text)
		return strings.Contains(strings.ToLower(v.Email), t) || strings.Contains(strings.ToLower(v.DisplayName), t) || strings.Contains(string(v.Number), t)
	}
	return true
}

// siteUsers returns every app user of a site, as the API shows them.
func (a *API) siteUsers(ctx context.Context, s directory.Site) ([]userView, error) {
	ms, err := a.dir.SiteMembers(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	tags, err := a.acc.Tags(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	out := make([]userView, 0, len(ms))
	for _, m := range ms {
		v, err := a.viewUser(ctx, m, tags[m.User])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// listUsers lists a site's app users, filtered by status, licence, number
// (call ID), tag, invitation (never_activated=true: not accepted) and text.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := userFilter{status: q.Get("status"), licence: q.Get("licence"), tag: q.Get("tag"), text: q.Get("q"), invitation: q.Get("invitation"), number: directory.Number(q.Get("number"))}
	all, err := a.siteUsers(r.Context(), s)
	if err != nil {
		return err
	}
	out := []userView{}
	for _, v := range all {
		if q.Get("never_activated") == "true" && v.Status == directory.StatusActive {
			continue
		}
		if f.match(v) {
			out = append(out, v)
		}
	}
	return ok(w, map[string]any{"users": out, "total": len(all)})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	m, err := a.membership(r.Context(), s.ID, directory.UserID(r.PathValue("user")))
	if err != nil {
		return err
	}
	tags, err := a.acc.Tags(r.Context(), s.ID)
	if err != nil {
		return err
	}
	v, err := a.viewUser(r.Context(), m, tags[m.User])
	if err != nil {
		return err
	}
	return ok(w, v)
}

// patchUser edits a membership, its tags, or the person's e-mail. The
// e-mail is the person's across sites, so changing it needs the admin role
// on every site they belong to.
func (a *API) patchUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[userRequest](a, w, r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if req.SendInvitation != nil {
		return errBadRequest("send_invitation only applies when adding; POST …/invitation to send one")
	}
	ctx := r.Context()
	var tags []string
	if req.Tags != nil {
		if tags, err = accounts.NormalizeTags(*req.Tags); err != nil {
			return err
		}
	}
	var m directory.Membership
	if err := againIfStale(func() (err error) {
		m, err = a.editMembership(ctx, p, s.ID, directory.UserID(r.PathValue("user")), req)
		return err
	}); err != nil {
		return err
	}
	if req.Email != nil {
		// Reset links sent to the old address stop working.
		if err := a.acc.DropResets(ctx, m.User); err != nil {
			return err
		}
	}
	if req.Tags != nil {
		if err := a.acc.SetTags(ctx, s.ID, m.User, tags); err != nil {
			return err
		}
	}
	a.audit(ctx, p, s.ID, "user.update", string(m.User))
	all, err := a.acc.Tags(ctx, s.ID)
	if err != nil {
		return err
	}
	v, err := a.viewUser(ctx, m, all[m.User])
	if err != nil {
		return err
	}
	return ok(w, v)
}

// editMembership makes the membership edits of req (and the e-mail change)
// on the membership as it reads it now, and stores them only over that
// (Was): a user deleted meanwhile stays deleted (not_found), and an edit
// that another one overtook is ErrStale, to be made again.
func (a *API) editMembership(ctx context.Context, p *principal, site directory.SiteID, user directory.UserID, req userRequest) (directory.Membership, error) {
	m, err := a.membership(ctx, site, user)
	if err != nil {
		return m, err
	}
	was := m
	var ops []directory.Op
	if req.Email != nil {
		e, err := accounts.NormalizeEmail(*req.Email)
		if err != nil {
			return m, err
		}
		all, err := a.dir.Memberships(ctx, m.User)
		if err != nil {
			return m, err
		}
		for _, o := range all {
			if _, role, err := a.roleOn(ctx, p, o.Site); err != nil || role.Rank() < accounts.RoleAdmin.Rank() {
				return m, errForbidden("this person also belongs to a site you do not administer; their e-mail can only change there too")
			}
		}
		ops = append(ops, directory.PutUser{User: directory.User{ID: m.User, Email: e}})
	}
	if req.Number != nil {
		m.Number = *req.Number
		if err := a.ensureEntry(ctx, site, m.Number, m.DisplayName, &ops); err != nil {
			return m, err
		}
	}
	if req.DisplayName != nil {
		m.DisplayName = strings.TrimSpace(*req.DisplayName)
	}
	if req.Licence != nil {
		m.Licence = *req.Licence
	}
	ops = append(ops, directory.PutMembership{Membership: m, Was: &was})
	return m, a.dir.Apply(ctx, ops...)
}

// ensureEntry adds a PutEntry op for a call ID the site does not have yet,
// named after its first app user.
func (a *API) ensureEntry(ctx context.Context, site directory.SiteID, n directory.Number, name string, ops *[]directory.Op) error {
	if err := n.Validate(); err != nil {
		return err
	}
	_, err := a.dir.Members(ctx, site, n)
	if errors.Is(err, directory.ErrNotFound) {
		*ops = append(*ops, directory.PutEntry{Entry: directory.Entry{Site: site, Number: n, Name: name}})
		return nil
	}
	return err
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	n, err := a.removeUsers(r.Context(), p, s, []directory.UserID{directory.UserID(r.PathValue("user"))})
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound("no app user %s in this site", r.PathValue("user"))
	}
	return noContent(w)
}

// deleteUsers removes many users of a site at once, all or none.
func (a *API) deleteUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req struct {
		IDs []directory.UserID `json:"ids"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if len(req.IDs) == 0 || len(req.IDs) > 10000 {
		return errBadRequest(`"ids": give 1 to 10,000 user IDs`)
	}
	slices.Sort(req.IDs)
	req.IDs = slices.Compact(req.IDs) // a user named twice is deleted once
	n, err := a.removeUsers(r.Context(), p, s, req.IDs)
	if err != nil {
		return err
	}
	return ok(w, map[string]int{"deleted": n})
}

// removeUsers deletes memberships of a site in one batch; a user left with
// no site loses their app devices, password and sessions.
func (a *API) removeUsers(ctx context.Context, p *principal, s directory.Site, ids []directory.UserID) (int, error) {
	var ops []directory.Op
	var orphans []directory.UserID
	var gone []directory.DeviceID // the orphans' app devices
	for _, id := range ids {
		ms, err := a.dir.Memberships(ctx, id)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if !slices.ContainsFunc(ms, func(m directory.Membership) bool { return m.Site == s.ID }) {
			continue
		}
		ops = append(ops, directory.DeleteMembership{Site: s.ID, User: id})
		if len(ms) == 1 {
			orphans = append(orphans, id)
			devs, err := a.dir.UserDevices(ctx, id)
			if err != nil {
				return 0, err
			}
			for _, d := range devs {
				ops = append(ops, directory.DeleteDevice{ID: d.ID})
				gone = append(gone, d.ID)
			}
		}
	}
	if len(ops) == 0 {
		return 0, nil
	}
	// Their push tokens first, as appRemoveDevice does: a batch that fails
	// after them can be sent again, where devices gone first would leave
	// their push tokens behind for good.
	if len(gone) > 0 {
		if err := a.acc.DropPushTokens(ctx, gone...); err != nil {
			return 0, err
		}
	}
	if err := a.dir.Apply(ctx, ops...); err != nil {
		return 0, err
	}
	var removed []directory.UserID
	for _, op := range ops {
		if dm, ok := op.(directory.DeleteMembership); ok {
			removed = append(removed, dm.User)
		}
	}
	n := len(removed)
	if err := a.acc.RemoveMembers(ctx, s.ID, removed); err != nil {
		return n, err
	}
	for _, id := range orphans {
		if err := a.acc.DeleteAppCredential(ctx, id); err != nil {
			return n, err
		}
	}
	a.audit(ctx, p, s.ID, "user.delete", fmt.Sprintf("%d app users", n))
	return n, nil
}
