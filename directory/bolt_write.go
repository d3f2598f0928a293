package directory

import (
	"fmt"
)

// ringBit is 1 for a ringable membership record, else 0.
func ringBit(v []byte) int {
	if len(v) > 0 && v[0]&flagRingable != 0 {
		return 1
	}
	return 0
}

func (w *boltWriter) putMembership(m Membership) error {
	if err := checkMembership(m); err != nil {
		return err
	}
	if err := w.requireSite(m.Site); err != nil {
		return err
	}
	if err := w.requireUser(m.User); err != nil {
		return err
	}
	if err := w.requireEntry(m.Site, m.Number); err != nil {
		return err
	}
	h, _, _, err := w.entry(m.Site, m.Number)
	if err != nil {
		return err
	}
	usKey := key(string(m.User), string(m.Site))
	old := w.get(bucketUserSites, usKey)
	oldNum := Number(old)
	inSite := decodeCount(w.get(bucketMemberCount, []byte(m.Site)))
	newToSite, newToNumber := old == nil, old == nil || oldNum != m.Number
	if err := checkMemberLimits("", m.Number, int(h.members), inSite, newToNumber, newToSite); err != nil {
		s, serr := w.site(m.Site) // decoded only to name it in the message
		if serr != nil {
			return serr
		}
		return checkMemberLimits(s.Name, m.Number, int(h.members), inSite, newToNumber, newToSite)
	}
	if !newToSite {
		oldKey := append(siteNumKey(m.Site, oldNum), m.User...)
		if err := w.adjustEntry(m.Site, oldNum, -1, -ringBit(w.get(bucketMembers, oldKey)), 0); err != nil {
			return err
		}
		w.del(bucketMembers, oldKey)
	}
	v, err := encodeMember(m)
	if err != nil {
		return err
	}
	w.put(bucketMembers, append(siteNumKey(m.Site, m.Number), m.User...), v)
	w.put(bucketUserSites, usKey, []byte(m.Number))
	if newToSite {
		w.put(bucketMemberCount, []byte(m.Site), encodeCount(inSite+1))
	}
	w.touchSite(m.Site)
	w.touchUser(m.User)
	return w.adjustEntry(m.Site, m.Number, 1, ringBit(v), 0)
}

func (w *boltWriter) deleteMembership(site SiteID, user UserID) error {
	usKey := key(string(user), string(site))
	old := w.get(bucketUserSites, usKey)
	if old == nil {
		return fmt.Errorf("membership of user %s in site %s: %w", user, site, ErrNotFound)
	}
	n := Number(old)
	memberKey := append(siteNumKey(site, n), user...)
	if err := w.adjustEntry(site, n, -1, -ringBit(w.get(bucketMembers, memberKey)), 0); err != nil {
		return err
	}
	w.del(bucketMembers, memberKey)
	w.del(bucketUserSites, usKey)
	c := decodeCount(w.get(bucketMemberCount, []byte(site)))
	w.put(bucketMemberCount, []byte(site), encodeCount(max(c-1, 0)))
	w.touchSite(site)
	w.touchUser(user)
	return nil
}

func (w *boltWriter) putDevice(d Device) error {
	if err := checkDevice(d); err != nil {
		return err
	}
	switch d.Kind {
	case KindDoorStation:
		for _, s := range append([]SiteID{d.Site}, d.CallSites...) {
			if err := w.requireSite(s); err != nil {
				return fmt.Errorf("door station %s: %w", d.Name, err)
			}
		}
	case KindMonitor:
		if err := w.requireEntry(d.Site, d.Number); err != nil {
			return fmt.Errorf("monitor %s: %w", d.Name, err)
		}
	case KindApp:
		if err := w.requireUser(d.User); err != nil {
			return fmt.Errorf("app device %s: %w", d.Name, err)
		}
	}
	nameKey := key(string(d.Kind), deviceScope(d), d.Name)
	if id := w.get(bucketDeviceNames, nameKey); id != nil && DeviceID(id) != d.ID {
		return errDeviceNameTaken(d)
	}
	old, exists, err := w.device(d.ID)
	if err != nil {
		return err
	}
	if exists {
		if err := w.unindexDevice(old); err != nil {
			return err
		}
	}
	w.put(bucketDeviceNames, nameKey, []byte(d.ID))
	switch d.Kind {
	case KindApp:
		w.put(bucketAppDevices, key(string(d.User), string(d.ID)), []byte(d.Name))
	case KindMonitor:
		w.put(bucketMonitors, append(siteNumKey(d.Site, d.Number), d.ID...), []byte(d.Name))
		if err := w.adjustEntry(d.Site, d.Number, 0, 0, 1); err != nil {
			return err
		}
	}
	w.touchDevice(d.ID)
	w.touchSite(d.Site)
	return w.putJSON(bucketDevices, []byte(d.ID), d)
}

// unindexDevice removes a device's name and ring indexes (not its token).
func (w *boltWriter) unindexDevice(d Device) error {
	w.del(bucketDeviceNames, key(string(d.Kind), deviceScope(d), d.Name))
	w.touchSite(d.Site)
	switch d.Kind {
	case KindApp:
		w.del(bucketAppDevices, key(string(d.User), string(d.ID)))
	case KindMonitor:
		w.del(bucketMonitors, append(siteNumKey(d.Site, d.Number), d.ID...))
		return w.adjustEntry(d.Site, d.Number, 0, 0, -1)
	}
	return nil
}

func (w *boltWriter) deleteDevice(id DeviceID) error {
	d, exists, err := w.device(id)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	}
	if err := w.unindexDevice(d); err != nil {
		return err
	}
	w.revokeToken(id)
	w.touchDevice(id)
	w.del(bucketDevices, []byte(id))
	return nil
}

// setDeviceToken replaces the device's token; a zero hash only revokes it.
func (w *boltWriter) setDeviceToken(id DeviceID, token TokenHash) error {
	if w.get(bucketDevices, []byte(id)) == nil {
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	}
	w.revokeToken(id)
	w.touchDevice(id)
	if token == (TokenHash{}) {
		return nil
	}
	if other := w.get(bucketTokens, token[:]); other != nil {
		return fmt.Errorf("the new token of device %s is already used by another device: %w", id, ErrConflict)
	}
	w.put(bucketTokens, token[:], []byte(id))
	w.put(bucketDeviceTokens, []byte(id), token[:])
	return nil
}

// revokeToken removes the device's token, if it has one.
func (w *boltWriter) revokeToken(id DeviceID) {
	old := w.get(bucketDeviceTokens, []byte(id))
	if old == nil {
		return
	}
	w.del(bucketTokens, old)
	w.del(bucketDeviceTokens, []byte(id))
}
