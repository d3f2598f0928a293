package api

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// callingDoorView is a door station of another site that calls this one:
// what the called site's managers need to recognise it, and nothing of the
// owning site's they have no business with (no token, no call sites).
type callingDoorView struct {
	ID       directory.DeviceID `json:"id"`
	Name     string             `json:"name"`
	SiteID   directory.SiteID   `json:"site_id"`
	SiteName string             `json:"site_name"`
}

// listCallingDoors lists the door stations of other sites whose call_sites
// name this site: the same readers as the site's own devices.
func (a *API) listCallingDoors(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	ctx := r.Context()
	ds, err := a.dir.CallingDoors(ctx, s.ID)
	if err != nil {
		return err
	}
	names := make(map[directory.SiteID]string)
	out := make([]callingDoorView, 0, len(ds))
	for _, d := range ds {
		name, known := names[d.Site]
		if !known {
			owner, err := a.dir.Site(ctx, d.Site)
			if err != nil {
				return err
			}
			name, names[d.Site] = owner.Name, owner.Name
		}
		out = append(out, callingDoorView{ID: d.ID, Name: d.Name, SiteID: d.Site, SiteName: name})
	}
	return ok(w, map[string]any{"doors": out})
}

// revokeCallingDoor takes this site out of another site's door station's
// call_sites: an admin of the called site decides who may ring its
// residents. Everything else about the door stays with its own site. The
// change is recorded in both sites' audit logs, so the owning site's
// managers see why their door no longer calls here.
func (a *API) revokeCallingDoor(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := directory.DeviceID(r.PathValue("device"))
	var d directory.Device
	if err := againIfStale(func() (err error) {
		d, err = a.dropCallSite(ctx, s.ID, id)
		return err
	}); err != nil {
		return err
	}
	details := string(d.ID) + " " + d.Name + " (site " + string(d.Site) + ") no longer calls site " + string(s.ID)
	a.audit(ctx, p, s.ID, "device.call_site.revoke", details)
	a.auditAs(ctx, a.actorIn(ctx, p, d.Site, s.ID), d.Site, "device.call_site.revoke", details)
	return noContent(w)
}

// actorIn names p in the audit log of site, where p acted from the called
// site: by e-mail (or key name) only when p has a role on site too. Else
// the called site's admin is named by their site alone: the door's own
// site's managers must not learn who the people of another site are
// (docs/decisions.md, "Another site's objects").
func (a *API) actorIn(ctx context.Context, p *principal, site, from directory.SiteID) string {
	if _, _, err := a.roleOn(ctx, p, site); err == nil {
		return p.name()
	}
	return "an admin of site " + string(from)
}

// dropCallSite removes site from the call sites of door station id, as it
// reads it now, and stores that only over what it read (directory.ErrStale
// when another edit overtook it).
func (a *API) dropCallSite(ctx context.Context, site directory.SiteID, id directory.DeviceID) (directory.Device, error) {
	d, err := a.dir.Device(ctx, id)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return d, err
	}
	if err != nil || !d.CallsFromElsewhere(site) {
		return d, errNotFound("no door station %s of another site calls this site", id)
	}
	was := d
	d.CallSites = slices.DeleteFunc(slices.Clone(d.CallSites), func(s directory.SiteID) bool { return s == site })
	err = a.dir.Apply(ctx, directory.PutDevice{Device: d, Was: &was})
	if errors.Is(err, directory.ErrNotFound) {
		return d, errNotFound("no door station %s of another site calls this site (deleted meanwhile)", id)
	}
	return d, err
}
