package directory

import (
	"context"
	"encoding/hex"
	"fmt"
)

func (w *redisWriter) device(ctx context.Context, id DeviceID) (Device, bool, error) {
	var d Device
	ok, err := w.getJSON(ctx, w.keys.device(id), &d)
	return d, ok, err
}

// ringUser marks for rebuilding every ring record the user's app devices
// appear in: those of each of the user's memberships.
func (w *redisWriter) ringUser(ctx context.Context, user UserID) error {
	_, sites, err := w.hgetall(ctx, w.keys.userSites(user))
	if err != nil {
		return err
	}
	for site, v := range sites {
		n, _ := decodeUserSite(v)
		w.rings[Target{Site: SiteID(site), Number: n}] = true
	}
	return nil
}

func (w *redisWriter) putDevice(ctx context.Context, d Device) error {
	if err := checkDevice(d); err != nil {
		return err
	}
	switch d.Kind {
	case KindDoorStation:
		for _, s := range append([]SiteID{d.Site}, d.CallSites...) {
			if err := w.requireSite(ctx, s); err != nil {
				return fmt.Errorf("door station %s: %w", d.Name, err)
			}
		}
	case KindMonitor:
		if err := w.requireEntry(ctx, d.Site, d.Number); err != nil {
			return fmt.Errorf("monitor %s: %w", d.Name, err)
		}
	case KindApp:
		if err := w.requireUser(ctx, d.User); err != nil {
			return fmt.Errorf("app device %s: %w", d.Name, err)
		}
	}
	nameKey := w.keys.deviceName(d.Kind, deviceScope(d), d.Name)
	id, ok, err := w.get(ctx, nameKey)
	if err != nil {
		return err
	}
	if ok && DeviceID(id) != d.ID {
		return errDeviceNameTaken(d)
	}
	old, exists, err := w.device(ctx, d.ID)
	if err != nil {
		return err
	}
	if exists {
		if err := w.unindexDevice(ctx, old); err != nil {
			return err
		}
	}
	w.set(nameKey, string(d.ID))
	if d.Kind != KindApp {
		w.hset(w.keys.siteDevices(d.Site), string(d.ID), string(d.Kind))
	}
	for _, s := range calledSites(d) {
		w.hset(w.keys.callers(s), string(d.ID), string(d.Site))
	}
	switch d.Kind {
	case KindApp:
		w.hset(w.keys.userApps(d.User), string(d.ID), d.Name)
		if err := w.ringUser(ctx, d.User); err != nil {
			return err
		}
	case KindMonitor:
		w.hset(w.keys.monitors(d.Site, d.Number), string(d.ID), d.Name)
		w.rings[Target{Site: d.Site, Number: d.Number}] = true
		if err := w.adjustEntry(ctx, d.Site, d.Number, 0, 0, 1); err != nil {
			return err
		}
	}
	w.touchDevice(d.ID)
	w.touchSite(d.Site)
	if err := w.setJSON(w.keys.device(d.ID), d); err != nil {
		return err
	}
	// Keep the token record, a copy of the device, in step.
	tok, ok, err := w.get(ctx, w.keys.deviceToken(d.ID))
	if err != nil || !ok {
		return err
	}
	return w.setJSON(w.keys.tokenHex(tok), d)
}

// calledSites are the sites whose callers index lists d: those it calls
// besides its own (CallSites may name its own site too, which changes
// nothing: it calls its own site anyway).
func calledSites(d Device) []SiteID {
	var out []SiteID
	for _, s := range d.CallSites {
		if s != d.Site {
			out = append(out, s)
		}
	}
	return out
}

// unindexDevice removes a device's name and ring indexes (not its token).
func (w *redisWriter) unindexDevice(ctx context.Context, d Device) error {
	w.del(w.keys.deviceName(d.Kind, deviceScope(d), d.Name))
	w.touchSite(d.Site)
	if d.Kind != KindApp {
		w.hdel(w.keys.siteDevices(d.Site), string(d.ID))
	}
	for _, s := range calledSites(d) {
		w.hdel(w.keys.callers(s), string(d.ID))
	}
	switch d.Kind {
	case KindApp:
		w.hdel(w.keys.userApps(d.User), string(d.ID))
		return w.ringUser(ctx, d.User)
	case KindMonitor:
		w.hdel(w.keys.monitors(d.Site, d.Number), string(d.ID))
		w.rings[Target{Site: d.Site, Number: d.Number}] = true
		return w.adjustEntry(ctx, d.Site, d.Number, 0, 0, -1)
	}
	return nil
}

func (w *redisWriter) deleteDevice(ctx context.Context, id DeviceID) error {
	d, exists, err := w.device(ctx, id)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	}
	if err := w.unindexDevice(ctx, d); err != nil {
		return err
	}
	if err := w.revokeToken(ctx, id); err != nil {
		return err
	}
	w.touchDevice(id)
	w.del(w.keys.device(id))
	return nil
}

// setDeviceToken replaces the device's token; a zero hash only revokes it.
func (w *redisWriter) setDeviceToken(ctx context.Context, id DeviceID, token TokenHash) error {
	dev, ok, err := w.get(ctx, w.keys.device(id))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	}
	if err := w.revokeToken(ctx, id); err != nil {
		return err
	}
	w.touchDevice(id)
	if token == (TokenHash{}) {
		return nil
	}
	tk := w.keys.token(token)
	if _, taken, err := w.get(ctx, tk); err != nil || taken {
		if err == nil {
			err = fmt.Errorf("the new token of device %s is already used by another device: %w", id, ErrConflict)
		}
		return err
	}
	w.set(tk, dev)
	w.set(w.keys.deviceToken(id), hex.EncodeToString(token[:]))
	return nil
}

// revokeToken removes the device's token, if it has one.
func (w *redisWriter) revokeToken(ctx context.Context, id DeviceID) error {
	old, ok, err := w.get(ctx, w.keys.deviceToken(id))
	if err != nil || !ok {
		return err
	}
	w.del(w.keys.tokenHex(old))
	w.del(w.keys.deviceToken(id))
	return nil
}
