package directory

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// encodeRedisEntry is the value of an entry in redisEntriesKey: the
// counters of entryHeader in decimal, then the name.
func encodeRedisEntry(h entryHeader, name string) string {
	return fmt.Sprintf("%d %d %d %s", h.members, h.ringable, h.monitors, name)
}

func decodeRedisEntry(v string) (entryHeader, string, error) {
	parts := strings.SplitN(v, " ", 4)
	if len(parts) != 4 {
		return entryHeader{}, "", fmt.Errorf("directory: redis: corrupt entry record %q", v)
	}
	var n [3]uint64
	for i := range n {
		x, err := strconv.ParseUint(parts[i], 10, 32)
		if err != nil {
			return entryHeader{}, "", fmt.Errorf("directory: redis: corrupt entry record %q", v)
		}
		n[i] = x
	}
	return entryHeader{members: uint16(n[0]), ringable: uint16(n[1]), monitors: uint32(n[2])}, parts[3], nil
}

func (w *redisWriter) site(ctx context.Context, id SiteID) (Site, error) {
	var s Site
	ok, err := w.getJSON(ctx, w.keys.site(id), &s)
	if err == nil && !ok {
		err = fmt.Errorf("site %s: %w", id, ErrNotFound)
	}
	return s, err
}

// requireSite returns ErrNotFound unless the site exists.
func (w *redisWriter) requireSite(ctx context.Context, id SiteID) error {
	_, ok, err := w.get(ctx, w.keys.site(id))
	if err == nil && !ok {
		err = fmt.Errorf("site %s: %w", id, ErrNotFound)
	}
	return err
}

// requireUser returns ErrNotFound unless the user exists.
func (w *redisWriter) requireUser(ctx context.Context, id UserID) error {
	_, ok, err := w.get(ctx, w.keys.user(id))
	if err == nil && !ok {
		err = fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return err
}

func (w *redisWriter) entry(ctx context.Context, site SiteID, n Number) (entryHeader, string, bool, error) {
	v, ok, err := w.hget(ctx, w.keys.entries(site), string(n))
	if err != nil || !ok {
		return entryHeader{}, "", false, err
	}
	h, name, err := decodeRedisEntry(v)
	return h, name, true, err
}

// requireEntry returns ErrNotFound naming the site when (site, n) does not exist.
func (w *redisWriter) requireEntry(ctx context.Context, site SiteID, n Number) error {
	_, _, ok, err := w.entry(ctx, site, n)
	if err != nil || ok {
		return err
	}
	s, err := w.site(ctx, site)
	if err != nil {
		return err
	}
	return fmt.Errorf("call ID %s does not exist in site %s: %w", n, s.Name, ErrNotFound)
}

func (w *redisWriter) putSite(ctx context.Context, s Site) error {
	if err := checkSite(s); err != nil {
		return err
	}
	for p, depth := s.ParentID, 0; p != ""; depth++ {
		parent, err := w.site(ctx, p)
		if err != nil {
			return fmt.Errorf("parent of site %s: %w", s.Name, err)
		}
		if parent.ID == s.ID || depth > maxSiteDepth {
			return errSiteCycle(s.Name, parent.Name)
		}
		p = parent.ParentID
	}
	names := w.keys.siteNames(s.ParentID)
	id, ok, err := w.hget(ctx, names, s.Name)
	if err != nil {
		return err
	}
	if ok && SiteID(id) != s.ID {
		return errSiteNameTaken(s.Name)
	}
	var old Site
	exists, err := w.getJSON(ctx, w.keys.site(s.ID), &old)
	if err != nil {
		return err
	}
	if exists && (old.ParentID != s.ParentID || old.Name != s.Name) {
		w.hdel(w.keys.siteNames(old.ParentID), old.Name)
	}
	w.hset(names, s.Name, string(s.ID))
	w.hset(w.keys.sites(), string(s.ID), "")
	w.touchSite(s.ID)
	return w.setJSON(w.keys.site(s.ID), s)
}

func (w *redisWriter) putEntry(ctx context.Context, e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if err := w.requireSite(ctx, e.Site); err != nil {
		return err
	}
	h, _, ok, err := w.entry(ctx, e.Site, e.Number)
	if err != nil {
		return err
	}
	if !ok {
		w.rings[Target{Site: e.Site, Number: e.Number}] = true // a new, empty ring record
	}
	w.touchSite(e.Site)
	w.hset(w.keys.entries(e.Site), string(e.Number), encodeRedisEntry(h, e.Name))
	return nil
}

func (w *redisWriter) deleteEntry(ctx context.Context, site SiteID, n Number) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := w.requireEntry(ctx, site, n); err != nil {
		return err
	}
	h, _, _, err := w.entry(ctx, site, n)
	if err != nil {
		return err
	}
	if h.members > 0 || h.monitors > 0 {
		s, err := w.site(ctx, site)
		if err != nil {
			return err
		}
		return errEntryInUse(s.Name, n, int(h.members), int(h.monitors))
	}
	w.touchSite(site)
	w.hdel(w.keys.entries(site), string(n))
	w.rings[Target{Site: site, Number: n}] = true // rebuilt as deleted
	return nil
}

// adjustEntry adds deltas to the counters of (site, n), which must exist.
func (w *redisWriter) adjustEntry(ctx context.Context, site SiteID, n Number, members, ringable, monitors int) error {
	h, name, ok, err := w.entry(ctx, site, n)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("directory: redis: counting on missing call ID %s of site %s", n, site)
	}
	h.members = uint16(max(int(h.members)+members, 0))
	h.ringable = uint16(max(int(h.ringable)+ringable, 0))
	h.monitors = uint32(max(int(h.monitors)+monitors, 0))
	w.hset(w.keys.entries(site), string(n), encodeRedisEntry(h, name))
	return nil
}

func (w *redisWriter) putUser(ctx context.Context, u User) error {
	u, err := normalizeUser(u)
	if err != nil {
		return err
	}
	id, ok, err := w.get(ctx, w.keys.email(u.Email))
	if err != nil {
		return err
	}
	if ok && UserID(id) != u.ID {
		return errEmailTaken(u.Email)
	}
	var old User
	exists, err := w.getJSON(ctx, w.keys.user(u.ID), &old)
	if err != nil {
		return err
	}
	if exists && old.Email != u.Email {
		w.del(w.keys.email(old.Email))
	}
	w.set(w.keys.email(u.Email), string(u.ID))
	return w.setJSON(w.keys.user(u.ID), u)
}
