package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

// passRequest makes a visitor pass: when it starts (default now) and ends
// (default DefaultPassValidity from now), whether it works once (default).
type passRequest struct {
	Label      string     `json:"label"`
	ValidFrom  *time.Time `json:"valid_from"`
	ValidUntil *time.Time `json:"valid_until"`
	OneTime    *bool      `json:"one_time"`
}

// createPass makes a visitor pass for the signed-in resident on one of
// their sites: a PIN the server picks, for every door station of the site,
// bounded in time.
func (a *API) createPass(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req passRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	s, err := a.residentSite(r, p)
	if err != nil {
		return err
	}
	if !s.Settings.VisitorPasses {
		return errForbidden("%s does not allow visitor passes (its managers can turn them on)", s.Name)
	}
	now := a.acc.Now()
	until := now.Add(accounts.DefaultPassValidity)
	if req.ValidUntil != nil {
		until = *req.ValidUntil
	}
	if !until.After(now) || until.Sub(now) > accounts.MaxPassValidity {
		return errInvalidField("valid_until must be in the next %d days", accounts.MaxPassValidity/(24*time.Hour))
	}
	stations, err := a.doorStations(ctx, s.ID)
	if err != nil {
		return err
	}
	doors := make([]directory.DeviceID, len(stations))
	for i, d := range stations {
		doors[i] = d.ID
	}
	if len(doors) == 0 {
		return apiErr(http.StatusConflict, "conflict", "%s has no door station to let a visitor in at", s.Name)
	}
	oneTime := req.OneTime == nil || *req.OneTime
	c, err := a.acc.PutPass(ctx, accounts.AccessCode{
		Site: s.ID, User: p.user, Label: req.Label, Doors: doors, ValidFrom: req.ValidFrom, ValidUntil: &until, OneTime: oneTime,
	})
	if err != nil {
		return err
	}
	a.auditEvent(ctx, accounts.Event{Site: s.ID, Kind: accounts.EventAudit, User: p.user, Outcome: "pass.create", Details: c.ID})
	return created(w, map[string]any{"pass": c})
}

// listPasses lists the signed-in resident's visitor passes on a site,
// newest first, used and expired ones too until the hourly purge.
func (a *API) listPasses(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, err := a.residentSite(r, p)
	if err != nil {
		return err
	}
	cs, err := a.acc.Passes(r.Context(), s.ID, p.user)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"passes": jsonarray.Of(cs)})
}

// deletePass deletes one of the signed-in resident's visitor passes: it
// opens nothing from then on.
func (a *API) deletePass(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, err := a.residentSite(r, p)
	if err != nil {
		return err
	}
	if err := a.acc.DeletePass(r.Context(), s.ID, p.user, r.PathValue("pass")); err != nil {
		return err
	}
	a.auditEvent(r.Context(), accounts.Event{Site: s.ID, Kind: accounts.EventAudit, User: p.user, Outcome: "pass.delete", Details: r.PathValue("pass")})
	return noContent(w)
}

// residentSite is the site the path names when the signed-in resident is rung
// there (active, with an active licence); any other is not found.
func (a *API) residentSite(r *http.Request, p *principal) (directory.Site, error) {
	id := directory.SiteID(r.PathValue("site"))
	m, err := a.membership(r.Context(), id, p.user)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound || err == nil && !m.Ringable() {
		return directory.Site{}, errNotFound("no site %s where you are rung", id)
	}
	if err != nil {
		return directory.Site{}, err
	}
	return a.dir.Site(r.Context(), id)
}
