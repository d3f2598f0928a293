package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// maxSiteDepth bounds the walk up a site's parents when checking for cycles.
const maxSiteDepth = 64

// boltWriter applies ops inside one read-write transaction and records what
// they touched for Subscribe.
type boltWriter struct {
	boltReader
	changeSet
}

func newBoltWriter(tx *bbolt.Tx) *boltWriter {
	return &boltWriter{boltReader: boltReader{tx: tx, buf: newWriteBuffer()}}
}

// put buffers a write; flush hands it to bbolt.
func (w *boltWriter) put(bucket string, k, v []byte) {
	if v == nil {
		v = []byte{}
	}
	w.buf.set(bucket, k, bufferedValue{value: v})
}

// del buffers a delete.
func (w *boltWriter) del(bucket string, k []byte) {
	w.buf.set(bucket, k, bufferedValue{deleted: true})
}

// putJSON buffers v as JSON under k.
func (w *boltWriter) putJSON(bucket string, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.put(bucket, k, data)
	return nil
}

// flush writes the buffered writes to the transaction.
func (w *boltWriter) flush() error { return w.buf.flush(w.tx) }

// apply dispatches one op.
func (w *boltWriter) apply(op Op) error {
	switch op := op.(type) {
	case PutSite:
		if op.Was != nil {
			cur, err := w.site(op.Site.ID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err := checkWas("site "+string(op.Site.ID), op.Was, cur, err == nil, equal); err != nil {
				return err
			}
		}
		return w.putSite(op.Site)
	case PutEntry:
		return w.putEntry(op.Entry)
	case DeleteEntry:
		return w.deleteEntry(op.Site, op.Number)
	case PutUser:
		return w.putUser(op.User)
	case PutMembership:
		if op.Was != nil {
			cur, found, err := w.membership(op.Membership.Site, op.Membership.User)
			if err != nil {
				return err
			}
			if err := checkWas(membershipName(op.Membership), op.Was, cur, found, equal); err != nil {
				return err
			}
		}
		return w.putMembership(op.Membership)
	case DeleteMembership:
		return w.deleteMembership(op.Site, op.User)
	case PutDevice:
		if op.Was != nil {
			cur, found, err := w.device(op.Device.ID)
			if err != nil {
				return err
			}
			if err := checkWas("device "+string(op.Device.ID), op.Was, cur, found, sameDevice); err != nil {
				return err
			}
		}
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
	nameKey := key(string(s.ParentID), s.Name)
	if id := w.get(bucketSiteNames, nameKey); id != nil && SiteID(id) != s.ID {
		return errSiteNameTaken(s.Name)
	}
	var old Site
	exists, err := w.getJSON(bucketSites, []byte(s.ID), &old)
	if err != nil {
		return err
	}
	if exists {
		if oldKey := key(string(old.ParentID), old.Name); !bytes.Equal(oldKey, nameKey) {
			w.del(bucketSiteNames, oldKey)
		}
	}
	w.put(bucketSiteNames, nameKey, []byte(s.ID))
	w.touchSite(s.ID)
	return w.putJSON(bucketSites, []byte(s.ID), s)
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
	w.put(bucketEntries, siteNumKey(e.Site, e.Number), encodeEntry(h, e.Name))
	return nil
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
	w.del(bucketEntries, siteNumKey(site, n))
	return nil
}

// adjustEntry adds deltas to the counters of (site, n), which must exist.
func (w *boltWriter) adjustEntry(site SiteID, n Number, members, ringable, monitors int) error {
	h, name, ok, err := w.entry(site, n)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bolt: counting on missing call ID %s of site %s", n, site)
	}
	h.members = uint16(max(int(h.members)+members, 0))
	h.ringable = uint16(max(int(h.ringable)+ringable, 0))
	h.monitors = uint32(max(int(h.monitors)+monitors, 0))
	w.put(bucketEntries, siteNumKey(site, n), encodeEntry(h, name))
	return nil
}

func (w *boltWriter) putUser(u User) error {
	u, err := normalizeUser(u)
	if err != nil {
		return err
	}
	if id := w.get(bucketEmails, []byte(u.Email)); id != nil && UserID(id) != u.ID {
		return errEmailTaken(u.Email)
	}
	var old User
	exists, err := w.getJSON(bucketUsers, []byte(u.ID), &old)
	if err != nil {
		return err
	}
	if exists && old.Email != u.Email {
		w.del(bucketEmails, []byte(old.Email))
	}
	w.put(bucketEmails, []byte(u.Email), []byte(u.ID))
	return w.putJSON(bucketUsers, []byte(u.ID), u)
}
