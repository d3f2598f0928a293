package api

import (
	"context"
	"errors"
	"math"
	"net/http"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/signaling"
)

// A resident's doors: the door stations of a site where they are rung,
// which they open from the app outside a call where the site allows it
// (its remote_open setting).

// A person opens doors from the app 5 times at once, then once every 6 s
// (10 a minute), on each node: enough for a door that did not open the
// first time, while a script that presses Open in a loop neither fills the
// door log nor rattles the lock.
const (
	openingsBurst     = 5
	openingsPerSecond = 1.0 / 6
)

// appDoor is a door station as a resident's app lists it.
type appDoor struct {
	ID     directory.DeviceID `json:"id"`
	Name   string             `json:"name"`
	Online bool               `json:"online"`
}

// appDoors lists the site's door stations, whether each is connected, and
// whether the site lets residents open them from the app.
func (a *API) appDoors(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, err := a.residentSite(r, p)
	if err != nil {
		return err
	}
	doors, err := a.doorStations(r.Context(), s.ID)
	if err != nil {
		return err
	}
	on := a.connected(r.Context(), doors)
	out := make([]appDoor, len(doors))
	for i, d := range doors {
		out[i] = appDoor{ID: d.ID, Name: d.Name, Online: on[d.ID]}
	}
	return ok(w, map[string]any{"remote_open": s.Settings.RemoteOpen, "doors": out})
}

// appOpenDoor opens one of the site's door stations for the site's door-open
// duration, and logs it as the resident's (a door entry, outcome "app").
func (a *API) appOpenDoor(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, err := a.residentSite(r, p)
	if err != nil {
		return err
	}
	if !s.Settings.RemoteOpen {
		return errForbidden("%s lets residents open its doors only during a call (its managers can change that)", s.Name)
	}
	ctx := r.Context()
	id := directory.DeviceID(r.PathValue("door"))
	d, err := a.dir.Device(ctx, id)
	if errors.Is(err, directory.ErrNotFound) || err == nil && (d.Kind != directory.KindDoorStation || d.Site != s.ID) {
		return errNotFound("no door station %s at %s", id, s.Name)
	}
	if err != nil {
		return err
	}
	if a.cfg.OpenDoor == nil {
		return apiErr(http.StatusServiceUnavailable, "service_unavailable", "this server does not run the signalling hub that reaches door stations")
	}
	if ok, wait := a.openings.Allow(p.user, a.acc.Now()); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		return errRetry(http.StatusTooManyRequests, "rate_limited", secs, "too many door openings; try again in %d s", secs)
	}
	dur := s.Settings.DoorOpenDuration
	if err := a.cfg.OpenDoor(ctx, d.ID, dur); errors.Is(err, signaling.ErrDoorOffline) {
		return apiErr(http.StatusConflict, "door_offline", "%s is not connected, so it cannot open now", d.Name)
	} else if err != nil {
		return err
	}
	a.auditEvent(ctx, accounts.Event{Site: s.ID, Kind: accounts.EventDoor, Door: d.ID, User: p.user, Outcome: "app"})
	return ok(w, map[string]any{"door_station_id": d.ID, "relay": 1, "duration_ms": dur.Milliseconds()})
}

// doorStations returns a site's door stations.
func (a *API) doorStations(ctx context.Context, site directory.SiteID) ([]directory.Device, error) {
	devs, err := a.dir.SiteDevices(ctx, site)
	if err != nil {
		return nil, err
	}
	var doors []directory.Device
	for _, d := range devs {
		if d.Kind == directory.KindDoorStation {
			doors = append(doors, d)
		}
	}
	return doors, nil
}
