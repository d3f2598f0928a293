package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
)

type deviceRequest struct {
	Kind      directory.DeviceKind `json:"kind"`
	Name      *string              `json:"name"`
	Number    *directory.Number    `json:"number"`
	SiteID    *directory.SiteID    `json:"site_id"`
	CallSites *[]directory.SiteID  `json:"call_sites"`
}

type provisioningView struct {
	Device  directory.Device `json:"device"`
	Code    string           `json:"provisioning_code"`
	Expires string           `json:"expires"`
}

// siteDevice returns a door station or monitor of the site, or not found.
func (a *API) siteDevice(r *http.Request, site directory.SiteID) (directory.Device, error) {
	d, err := a.dir.Device(r.Context(), directory.DeviceID(r.PathValue("device")))
	if err != nil || d.Site != site || d.Kind == directory.KindApp {
		return directory.Device{}, errNotFound("no door station or monitor %s in this site", r.PathValue("device"))
	}
	return d, nil
}

// createDevice registers a door station or monitor (installers and up) and
// returns its one-time provisioning code.
func (a *API) createDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[deviceRequest](a, w, r, p, accounts.RoleInstaller)
	if err != nil {
		return err
	}
	if req.Kind != directory.KindDoorStation && req.Kind != directory.KindMonitor {
		return errBadRequest(`"kind" must be "door_station" or "monitor" (app devices come from the app)`)
	}
	if req.Name == nil {
		return errBadRequest(`missing "name"`)
	}
	d := directory.Device{ID: directory.DeviceID(directory.NewID("d_")), Kind: req.Kind, Name: strings.TrimSpace(*req.Name), Site: s.ID}
	if req.Kind == directory.KindMonitor {
		if req.Number == nil {
			return errBadRequest(`a monitor needs the "number" (call ID) it rings for`)
		}
		d.Number = *req.Number
	}
	if req.CallSites != nil {
		if err := a.checkCallSites(r, p, *req.CallSites); err != nil {
			return err
		}
		d.CallSites = *req.CallSites
	}
	ctx := r.Context()
	if err := a.putDevice(ctx, d, nil); err != nil {
		return err
	}
	code, exp, err := a.acc.NewProvisioningCode(ctx, d.ID, s.ID)
	if err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "device.create", string(d.Kind)+" "+d.Name)
	return created(w, provisioningView{Device: d, Code: code, Expires: exp.Format(timeFormat)})
}

// putDevice stores d: a new one (was nil), or an edit of was, the device as
// read, stored only over that (a device revoked meanwhile is not brought
// back; an edit another overtook is directory.ErrStale). A monitor's call
// ID the site does not have is a mistake in the request (422 naming
// "number"), not a missing resource.
func (a *API) putDevice(ctx context.Context, d directory.Device, was *directory.Device) error {
	err := a.dir.Apply(ctx, directory.PutDevice{Device: d, Was: was})
	if was != nil && errors.Is(err, directory.ErrNotFound) {
		if _, gone := a.dir.Device(ctx, d.ID); errors.Is(gone, directory.ErrNotFound) {
			return errNotFound("no door station or monitor %s in this site (deleted meanwhile)", d.ID)
		}
	}
	if errors.Is(err, directory.ErrNotFound) && d.Kind == directory.KindMonitor {
		return errInvalidField(`"number": call ID %s does not exist in this site`, d.Number)
	}
	return err
}

// checkCallSites: a door station may call other sites only where the
// principal is an installer too.
func (a *API) checkCallSites(r *http.Request, p *principal, sites []directory.SiteID) error {
	for _, cs := range sites {
		if _, role, err := a.roleOn(r.Context(), p, cs); err != nil {
			return err
		} else if role.Rank() < accounts.RoleInstaller.Rank() {
			return errForbidden("call_sites: you are not an installer of site %s", cs)
		}
	}
	return nil
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	ds, err := a.dir.SiteDevices(r.Context(), s.ID)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"devices": a.listed(r.Context(), ds)})
}

// listed is ds as lists show them: each with whether it is connected now,
// when the API knows (Config.Connected); as they are otherwise.
func (a *API) listed(ctx context.Context, ds []directory.Device) any {
	if a.cfg.Connected == nil {
		return jsonarray.Of(ds)
	}
	on := a.connected(ctx, ds)
	out := make([]listedDevice, len(ds))
	var reported map[directory.DeviceID]time.Time // door stations reported offline, read once if any is
	for i, d := range ds {
		out[i] = listedDevice{Device: d, Online: on[d.ID]}
		if d.Kind != directory.KindDoorStation || on[d.ID] {
			continue
		}
		if reported == nil {
			var err error
			if reported, err = a.acc.DoorsOffline(ctx); err != nil {
				a.log.Warn("reading the door stations reported offline failed", "err", err)
				reported = map[directory.DeviceID]time.Time{}
			}
		}
		if since, ok := reported[d.ID]; ok {
			out[i].OfflineSince = &since
		}
	}
	return out
}

// connected reports which of ds are connected now (Config.Connected); none
// when the API does not know.
func (a *API) connected(ctx context.Context, ds []directory.Device) map[directory.DeviceID]bool {
	if a.cfg.Connected == nil {
		return nil
	}
	ids := make([]directory.DeviceID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return a.cfg.Connected(ctx, ids)
}

// listedDevice is a device as the site's list shows it: whether it is
// connected now, too, and for a door station reported offline to the
// site's admins, since when.
type listedDevice struct {
	directory.Device
	Online       bool       `json:"online"`
	OfflineSince *time.Time `json:"offline_since,omitempty"`
}

// patchDevice renames a device, moves it to another site (installer there
// too), assigns a monitor to another call ID, or changes a door station's
// further call sites.
func (a *API) patchDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	req, s, _, err := decodeNeed[deviceRequest](a, w, r, p, accounts.RoleInstaller)
	if err != nil {
		return err
	}
	var d directory.Device
	if err := againIfStale(func() (err error) {
		d, err = a.editDevice(r, p, s.ID, req)
		return err
	}); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "device.update", string(d.ID)+" "+d.Name)
	return ok(w, d)
}

// editDevice makes the edits of req on the device as it reads it now, and
// stores them only over that (putDevice).
func (a *API) editDevice(r *http.Request, p *principal, site directory.SiteID, req deviceRequest) (directory.Device, error) {
	d, err := a.siteDevice(r, site)
	if err != nil {
		return d, err
	}
	was := d
	if req.Kind != "" && req.Kind != d.Kind {
		return d, errBadRequest("a device's kind cannot change")
	}
	if req.Name != nil {
		d.Name = strings.TrimSpace(*req.Name)
	}
	if req.SiteID != nil && *req.SiteID != d.Site {
		if _, role, err := a.roleOn(r.Context(), p, *req.SiteID); err != nil {
			return d, err
		} else if role.Rank() < accounts.RoleInstaller.Rank() {
			return d, errForbidden("moving a device needs the installer role on the site it moves to")
		}
		d.Site = *req.SiteID
	}
	if req.Number != nil {
		if d.Kind != directory.KindMonitor {
			return d, errBadRequest("only monitors have a call ID")
		}
		d.Number = *req.Number
	}
	if req.CallSites != nil {
		if d.Kind != directory.KindDoorStation {
			return d, errBadRequest("only door stations have call_sites")
		}
		if err := a.checkCallSites(r, p, *req.CallSites); err != nil {
			return d, err
		}
		d.CallSites = *req.CallSites
	}
	return d, a.putDevice(r.Context(), d, &was)
}

// revokeDevice deletes a door station or monitor: its token stops working
// and its live connection is closed (the directory change reaches the
// signalling hub of whichever node holds it).
func (a *API) revokeDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleInstaller)
	if err != nil {
		return err
	}
	d, err := a.siteDevice(r, s.ID)
	if err != nil {
		return err
	}
	if err := a.dir.Apply(r.Context(), directory.DeleteDevice{ID: d.ID}); err != nil {
		return err
	}
	if err := a.acc.DropProvisioning(r.Context(), d.ID); err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "device.revoke", string(d.ID)+" "+d.Name)
	return noContent(w)
}

// reprovisionDevice issues a new one-time code (a replaced or reset
// device); the current token works until the code is spent.
func (a *API) reprovisionDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleInstaller)
	if err != nil {
		return err
	}
	d, err := a.siteDevice(r, s.ID)
	if err != nil {
		return err
	}
	code, exp, err := a.acc.NewProvisioningCode(r.Context(), d.ID, s.ID)
	if err != nil {
		return err
	}
	a.audit(r.Context(), p, s.ID, "device.provisioning", string(d.ID)+" "+d.Name)
	return created(w, provisioningView{Device: d, Code: code, Expires: exp.Format(timeFormat)})
}

// provision is what a door station or monitor calls with the code its
// installer typed: the code, once, becomes the device's token for
// /v1/signal (any earlier token stops working).
func (a *API) provision(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Code string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := required("code", req.Code); err != nil {
		return err
	}
	ctx := r.Context()
	pr, err := a.acc.SpendProvisioningCode(ctx, req.Code)
	if err != nil {
		if errors.Is(err, accounts.ErrNotFound) {
			return apiErr(http.StatusNotFound, "not_found", "unknown or already used provisioning code")
		}
		return err
	}
	d, err := a.dir.Device(ctx, pr.Device)
	if err != nil {
		return apiErr(http.StatusNotFound, "not_found", "the device of this code was deleted")
	}
	tok, hash := directory.NewToken()
	if err := a.dir.Apply(ctx, directory.SetDeviceToken{ID: d.ID, Token: hash}); err != nil {
		return err
	}
	_ = a.acc.Log(ctx, accounts.Event{Site: d.Site, Kind: accounts.EventAudit, Actor: string(d.ID), Outcome: "device.provisioned", Door: d.ID})
	return ok(w, map[string]any{"device": d, "token": tok, "signal_url": "/v1/signal"})
}
