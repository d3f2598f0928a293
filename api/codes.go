package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

type codeRequest struct {
	User       directory.UserID     `json:"user_id"`
	Label      string               `json:"label"`
	PIN        string               `json:"pin"`
	Doors      []directory.DeviceID `json:"doors"`
	Schedule   []accounts.Window    `json:"schedule"`
	TimeZone   string               `json:"time_zone"`
	ValidFrom  *time.Time           `json:"valid_from"`
	ValidUntil *time.Time           `json:"valid_until"`
	OneTime    bool                 `json:"one_time"`
}

// createCode gives an app user of the site a keypad PIN for chosen door
// stations of the site (admins and up).
func (a *API) createCode(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[codeRequest](a, w, r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if req.User == "" {
		return errBadRequest(`missing "user_id"`)
	}
	if _, err := a.membership(ctx, s.ID, req.User); err != nil {
		return err
	}
	for _, id := range req.Doors {
		d, err := a.dir.Device(ctx, id)
		if err != nil || d.Site != s.ID || d.Kind != directory.KindDoorStation {
			return errNotFound("no door station %s in this site", id)
		}
	}
	c, err := a.acc.PutCode(ctx, accounts.AccessCode{
		Site: s.ID, User: req.User, Label: req.Label, PIN: req.PIN, Doors: slices.Compact(req.Doors),
		Schedule: req.Schedule, TimeZone: req.TimeZone, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil, OneTime: req.OneTime,
	})
	if err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "code.create", c.ID+" for "+string(c.User))
	return created(w, c)
}

func (a *API) listCodes(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	cs, err := a.acc.Codes(r.Context(), s.ID)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"codes": jsonarray.Of(cs)})
}

func (a *API) deleteCode(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if err := a.acc.DeleteCode(r.Context(), s.ID, r.PathValue("code")); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "code.delete", r.PathValue("code"))
	return noContent(w)
}
