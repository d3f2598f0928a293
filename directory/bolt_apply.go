package directory

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
)

// maxSiteDepth bounds the walk up a site's parents when checking for cycles.
const maxSiteDepth = 64

// boltWriter applies ops inside one read-write transaction and records what
// they touched for Subscribe.
type boltWriter struct {
	boltReader
	touchedSites   []SiteID
	touchedDevices []DeviceID
	seenSite       map[SiteID]bool
	seenDevice     map[DeviceID]bool
}

func newBoltWriter(tx *bbolt.Tx) *boltWriter {
	return &boltWriter{
		boltReader: newBoltReader(tx),
		seenSite:   make(map[SiteID]bool),
		seenDevice: make(map[DeviceID]bool),
	}
}

func (w *boltWriter) touchSite(id SiteID) {
	if id != "" && !w.seenSite[id] {
		w.seenSite[id] = true
		w.touchedSites = append(w.touchedSites, id)
	}
}

func (w *boltWriter) touchDevice(id DeviceID) {
	if !w.seenDevice[id] {
		w.seenDevice[id] = true
		w.touchedDevices = append(w.touchedDevices, id)
	}
}

// changes lists the touched sites, then the touched devices.
func (w *boltWriter) changes() []Change {
	out := make([]Change, 0, len(w.touchedSites)+len(w.touchedDevices))
	for _, s := range w.touchedSites {
		out = append(out, Change{Site: s})
	}
	for _, d := range w.touchedDevices {
		out = append(out, Change{Device: d})
	}
	return out
}

// apply dispatches one op.
func (w *boltWriter) apply(op Op) error {
	switch op := op.(type) {
	case PutSite:
		return w.putSite(op.Site)
	case PutEntry:
		return w.putEntry(op.Entry)
	case DeleteEntry:
		return w.deleteEntry(op.Site, op.Number)
	case PutUser:
		return w.putUser(op.User)
	case PutMembership:
		return w.putMembership(op.Membership)
	case DeleteMembership:
		return w.deleteMembership(op.Site, op.User)
	case PutDevice:
		return w.putDevice(op.Device)
	case DeleteDevice:
		return w.deleteDevice(op.ID)
	case SetDeviceToken:
		return w.setDeviceToken(op.ID, op.Token)
	default:
		return fmt.Errorf("unknown op %T: %w", op, ErrInvalid)
	}
}

func (w *boltWriter) putSite(s Site) error {
	if err := checkSite(s); err != nil {
		return err
	}
	for p, depth := s.ParentID, 0; p != ""; depth++ {
		parent, err := w.site(p)
		if err != nil {
			return fmt.Errorf("parent of site %s: %w", s.Name, err)
		}
		if parent.ID == s.ID || depth > maxSiteDepth {
			return errSiteCycle(s.Name, parent.Name)
		}
		p = parent.ParentID
	}
	names := w.bucket(bucketSiteNames)
	nameKey := key(string(s.ParentID), s.Name)
	if id := names.Get(nameKey); id != nil && SiteID(id) != s.ID {
		return errSiteNameTaken(s.Name)
	}
	var old Site
	exists, err := getJSON(w.bucket(bucketSites), []byte(s.ID), &old)
	if err != nil {
		return err
	}
	if exists {
		if oldKey := key(string(old.ParentID), old.Name); !bytes.Equal(oldKey, nameKey) {
			if err := names.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if err := names.Put(nameKey, []byte(s.ID)); err != nil {
		return err
	}
	w.touchSite(s.ID)
	return putJSON(w.bucket(bucketSites), []byte(s.ID), s)
}

func (w *boltWriter) putEntry(e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if err := w.requireSite(e.Site); err != nil {
		return err
	}
	h, _, _, err := w.entry(e.Site, e.Number)
	if err != nil {
		return err
	}
	w.touchSite(e.Site)
	return w.bucket(bucketEntries).Put(siteNumKey(e.Site, e.Number), encodeEntry(h, e.Name))
}

func (w *boltWriter) deleteEntry(site SiteID, n Number) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := w.requireEntry(site, n); err != nil {
		return err
	}
	h, _, _, err := w.entry(site, n)
	if err != nil {
		return err
	}
	if h.members > 0 || h.monitors > 0 {
		s, err := w.site(site)
		if err != nil {
			return err
		}
		return errEntryInUse(s.Name, n, int(h.members), int(h.monitors))
	}
	w.touchSite(site)
	return w.bucket(bucketEntries).Delete(siteNumKey(site, n))
}

// refreshEntry recomputes the counters of (site, n) from its member and
// monitor records; it is called after every change to either.
func (w *boltWriter) refreshEntry(site SiteID, n Number) error {
	h, name, ok, err := w.entry(site, n)
	if err != nil || !ok {
		return err
	}
	prefix := siteNumKey(site, n)
	h = entryHeader{}
	err = scanPrefix(w.bucket(bucketMembers), prefix, func(_, v []byte) (bool, error) {
		h.members++
		if len(v) > 0 && v[0]&flagRingable != 0 {
			h.ringable++
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	err = scanPrefix(w.bucket(bucketMonitors), prefix, func(_, _ []byte) (bool, error) {
		h.monitors++
		return true, nil
	})
	if err != nil {
		return err
	}
	return w.bucket(bucketEntries).Put(prefix, encodeEntry(h, name))
}

func (w *boltWriter) putUser(u User) error {
	u, err := normalizeUser(u)
	if err != nil {
		return err
	}
	emails := w.bucket(bucketEmails)
	if id := emails.Get([]byte(u.Email)); id != nil && UserID(id) != u.ID {
		return errEmailTaken(u.Email)
	}
	var old User
	exists, err := getJSON(w.bucket(bucketUsers), []byte(u.ID), &old)
	if err != nil {
		return err
	}
	if exists && old.Email != u.Email {
		if err := emails.Delete([]byte(old.Email)); err != nil {
			return err
		}
	}
	if err := emails.Put([]byte(u.Email), []byte(u.ID)); err != nil {
		return err
	}
	return putJSON(w.bucket(bucketUsers), []byte(u.ID), u)
}
