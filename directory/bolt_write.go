package directory

import (
	"fmt"
)

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
	userSites, counts := w.bucket(bucketUserSites), w.bucket(bucketMemberCount)
	usKey := key(string(m.User), string(m.Site))
	old := userSites.Get(usKey)
	oldNum := Number(old)
	inSite := decodeCount(counts.Get([]byte(m.Site)))
	newToSite, newToNumber := old == nil, old == nil || oldNum != m.Number
	if err := checkMemberLimits("", m.Number, int(h.members), inSite, newToNumber, newToSite); err != nil {
		s, serr := w.site(m.Site) // decoded only to name it in the message
		if serr != nil {
			return serr
		}
		return checkMemberLimits(s.Name, m.Number, int(h.members), inSite, newToNumber, newToSite)
	}
	members := w.bucket(bucketMembers)
	if !newToSite && newToNumber {
		if err := members.Delete(append(siteNumKey(m.Site, oldNum), m.User...)); err != nil {
			return err
		}
		if err := w.refreshEntry(m.Site, oldNum); err != nil {
			return err
		}
	}
	v, err := encodeMember(m)
	if err != nil {
		return err
	}
	if err := members.Put(append(siteNumKey(m.Site, m.Number), m.User...), v); err != nil {
		return err
	}
	if err := userSites.Put(usKey, []byte(m.Number)); err != nil {
		return err
	}
	if newToSite {
		if err := counts.Put([]byte(m.Site), encodeCount(inSite+1)); err != nil {
			return err
		}
	}
	w.touchSite(m.Site)
	return w.refreshEntry(m.Site, m.Number)
}

func (w *boltWriter) deleteMembership(site SiteID, user UserID) error {
	userSites, counts := w.bucket(bucketUserSites), w.bucket(bucketMemberCount)
	usKey := key(string(user), string(site))
	old := userSites.Get(usKey)
	if old == nil {
		return fmt.Errorf("membership of user %s in site %s: %w", user, site, ErrNotFound)
	}
	n := Number(old)
	if err := w.bucket(bucketMembers).Delete(append(siteNumKey(site, n), user...)); err != nil {
		return err
	}
	if err := userSites.Delete(usKey); err != nil {
		return err
	}
	c := decodeCount(counts.Get([]byte(site)))
	if c > 0 {
		c--
	}
	if err := counts.Put([]byte(site), encodeCount(c)); err != nil {
		return err
	}
	w.touchSite(site)
	return w.refreshEntry(site, n)
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
	names := w.bucket(bucketDeviceNames)
	nameKey := key(string(d.Kind), deviceScope(d), d.Name)
	if id := names.Get(nameKey); id != nil && DeviceID(id) != d.ID {
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
	if err := names.Put(nameKey, []byte(d.ID)); err != nil {
		return err
	}
	switch d.Kind {
	case KindApp:
		err = w.bucket(bucketAppDevices).Put(key(string(d.User), string(d.ID)), []byte(d.Name))
	case KindMonitor:
		err = w.bucket(bucketMonitors).Put(append(siteNumKey(d.Site, d.Number), d.ID...), []byte(d.Name))
		if err == nil {
			err = w.refreshEntry(d.Site, d.Number)
		}
	}
	if err != nil {
		return err
	}
	w.touchDevice(d.ID)
	w.touchSite(d.Site)
	return putJSON(w.bucket(bucketDevices), []byte(d.ID), d)
}

// unindexDevice removes a device's name and ring indexes (not its token).
func (w *boltWriter) unindexDevice(d Device) error {
	if err := w.bucket(bucketDeviceNames).Delete(key(string(d.Kind), deviceScope(d), d.Name)); err != nil {
		return err
	}
	switch d.Kind {
	case KindApp:
		return w.bucket(bucketAppDevices).Delete(key(string(d.User), string(d.ID)))
	case KindMonitor:
		if err := w.bucket(bucketMonitors).Delete(append(siteNumKey(d.Site, d.Number), d.ID...)); err != nil {
			return err
		}
		w.touchSite(d.Site)
		return w.refreshEntry(d.Site, d.Number)
	}
	w.touchSite(d.Site)
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
	if err := w.revokeToken(id); err != nil {
		return err
	}
	w.touchDevice(id)
	return w.bucket(bucketDevices).Delete([]byte(id))
}

// setDeviceToken replaces the device's token; a zero hash only revokes it.
func (w *boltWriter) setDeviceToken(id DeviceID, token TokenHash) error {
	if w.bucket(bucketDevices).Get([]byte(id)) == nil {
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	}
	if err := w.revokeToken(id); err != nil {
		return err
	}
	w.touchDevice(id)
	if token == (TokenHash{}) {
		return nil
	}
	tokens := w.bucket(bucketTokens)
	if other := tokens.Get(token[:]); other != nil {
		return fmt.Errorf("the new token of device %s is already used by another device: %w", id, ErrConflict)
	}
	if err := tokens.Put(token[:], []byte(id)); err != nil {
		return err
	}
	return w.bucket(bucketDeviceTokens).Put([]byte(id), token[:])
}

func (w *boltWriter) revokeToken(id DeviceID) error {
	byDevice := w.bucket(bucketDeviceTokens)
	old := byDevice.Get([]byte(id))
	if old == nil {
		return nil
	}
	if err := w.bucket(bucketTokens).Delete(old); err != nil {
		return err
	}
	return byDevice.Delete([]byte(id))
}
