package directory

import (
	"context"
	"fmt"
	"strconv"
)

// encodeUserSite is the value of a membership in redisUserSitesKey: the
// flags byte of encodeMember, then the number.
func encodeUserSite(m Membership) string {
	var flags byte
	if m.Ringable() {
		flags |= flagRingable
	}
	return string([]byte{flags}) + string(m.Number)
}

// decodeUserSite returns the number and the ringable flag of a
// redisUserSitesKey value.
func decodeUserSite(v string) (Number, bool) {
	if v == "" {
		return "", false
	}
	return Number(v[1:]), v[0]&flagRingable != 0
}

// count reads the member counter of a site.
func (w *redisWriter) count(ctx context.Context, site SiteID) (int, error) {
	v, ok, err := w.get(ctx, w.keys.count(site))
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("directory: redis: corrupt member count %q of site %s", v, site)
	}
	return n, nil
}

// membership reads a user's membership of a site; found is false when
// there is none.
func (w *redisWriter) membership(ctx context.Context, site SiteID, user UserID) (m Membership, found bool, err error) {
	us, found, err := w.hget(ctx, w.keys.userSites(user), string(site))
	if err != nil || !found {
		return m, false, err
	}
	n, _ := decodeUserSite(us)
	v, found, err := w.hget(ctx, w.keys.members(site, n), string(user))
	if err != nil || !found {
		return m, false, err
	}
	m, err = decodeMember([]byte(v))
	return m, err == nil, err
}

func (w *redisWriter) putMembership(ctx context.Context, m Membership) error {
	if err := checkMembership(m); err != nil {
		return err
	}
	if err := w.requireSite(ctx, m.Site); err != nil {
		return err
	}
	if err := w.requireUser(ctx, m.User); err != nil {
		return err
	}
	if err := w.requireEntry(ctx, m.Site, m.Number); err != nil {
		return err
	}
	h, _, _, err := w.entry(ctx, m.Site, m.Number)
	if err != nil {
		return err
	}
	us := w.keys.userSites(m.User)
	old, member, err := w.hget(ctx, us, string(m.Site))
	if err != nil {
		return err
	}
	oldNum, _ := decodeUserSite(old)
	inSite, err := w.count(ctx, m.Site)
	if err != nil {
		return err
	}
	newToSite, newToNumber := !member, !member || oldNum != m.Number
	if err := checkMemberLimits("", m.Number, int(h.members), inSite, newToNumber, newToSite); err != nil {
		s, serr := w.site(ctx, m.Site) // decoded only to name it in the message
		if serr != nil {
			return serr
		}
		return checkMemberLimits(s.Name, m.Number, int(h.members), inSite, newToNumber, newToSite)
	}
	if !newToSite {
		if err := w.leaveNumber(ctx, m.Site, oldNum, m.User); err != nil {
			return err
		}
	}
	v, err := encodeMember(m)
	if err != nil {
		return err
	}
	w.hset(w.keys.members(m.Site, m.Number), string(m.User), string(v))
	w.hset(us, string(m.Site), encodeUserSite(m))
	if newToSite {
		w.set(w.keys.count(m.Site), strconv.Itoa(inSite+1))
	}
	w.touchSite(m.Site)
	w.touchUser(m.User)
	w.rings[Target{Site: m.Site, Number: m.Number}] = true
	return w.adjustEntry(ctx, m.Site, m.Number, 1, ringBit(v), 0)
}

// leaveNumber removes user's membership record from (site, n) and its
// place in the entry's counters.
func (w *redisWriter) leaveNumber(ctx context.Context, site SiteID, n Number, user UserID) error {
	mk := w.keys.members(site, n)
	v, _, err := w.hget(ctx, mk, string(user))
	if err != nil {
		return err
	}
	if err := w.adjustEntry(ctx, site, n, -1, -ringBit([]byte(v)), 0); err != nil {
		return err
	}
	w.hdel(mk, string(user))
	w.rings[Target{Site: site, Number: n}] = true
	return nil
}

func (w *redisWriter) deleteMembership(ctx context.Context, site SiteID, user UserID) error {
	us := w.keys.userSites(user)
	old, ok, err := w.hget(ctx, us, string(site))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("membership of user %s in site %s: %w", user, site, ErrNotFound)
	}
	n, _ := decodeUserSite(old)
	if err := w.leaveNumber(ctx, site, n, user); err != nil {
		return err
	}
	w.hdel(us, string(site))
	c, err := w.count(ctx, site)
	if err != nil {
		return err
	}
	w.set(w.keys.count(site), strconv.Itoa(max(c-1, 0)))
	w.touchSite(site)
	w.touchUser(user)
	return nil
}
