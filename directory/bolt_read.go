package directory

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"
)

// boltReader reads the directory inside one bbolt transaction; boltWriter
// builds on it, adding a write buffer that single-key reads (get) see.
// Buckets are looked up lazily: the ring path needs only four.
type boltReader struct {
	tx  *bbolt.Tx
	buf *writeBuffer // nil in read-only transactions
}

func newBoltReader(tx *bbolt.Tx) boltReader { return boltReader{tx: tx} }

func (r boltReader) bucket(name string) *bbolt.Bucket { return r.tx.Bucket([]byte(name)) }

// get reads one key, seeing the writes buffered by the current Apply.
func (r boltReader) get(bucket string, k []byte) []byte {
	if r.buf != nil {
		if v, ok := r.buf.lookup(bucket, k); ok {
			return v.value // nil when deleted
		}
	}
	return r.bucket(bucket).Get(k)
}

// getJSON decodes the JSON record under k into out and reports whether it exists.
func (r boltReader) getJSON(bucket string, k []byte, out any) (bool, error) {
	v := r.get(bucket, k)
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(v, out); err != nil {
		return true, fmt.Errorf("bolt: corrupt record %q in %s: %w", k, bucket, err)
	}
	return true, nil
}

func (r boltReader) site(id SiteID) (Site, error) {
	var s Site
	ok, err := r.getJSON(bucketSites, []byte(id), &s)
	if err == nil && !ok {
		err = fmt.Errorf("site %s: %w", id, ErrNotFound)
	}
	return s, err
}

func (r boltReader) entry(site SiteID, n Number) (entryHeader, string, bool, error) {
	v := r.get(bucketEntries, siteNumKey(site, n))
	if v == nil {
		return entryHeader{}, "", false, nil
	}
	h, name, err := decodeEntry(v)
	return h, name, true, err
}

// requireEntry returns ErrNotFound naming the site when (site, n) does not exist.
func (r boltReader) requireEntry(site SiteID, n Number) error {
	_, _, ok, err := r.entry(site, n)
	if err != nil || ok {
		return err
	}
	s, err := r.site(site)
	if err != nil {
		return err
	}
	return fmt.Errorf("call ID %s does not exist in site %s: %w", n, s.Name, ErrNotFound)
}

// requireSite returns ErrNotFound unless the site exists, without decoding it.
func (r boltReader) requireSite(id SiteID) error {
	if r.get(bucketSites, []byte(id)) == nil {
		return fmt.Errorf("site %s: %w", id, ErrNotFound)
	}
	return nil
}

// requireUser returns ErrNotFound unless the user exists, without decoding it.
func (r boltReader) requireUser(id UserID) error {
	if r.get(bucketUsers, []byte(id)) == nil {
		return fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return nil
}

func (r boltReader) user(id UserID) (User, error) {
	var u User
	ok, err := r.getJSON(bucketUsers, []byte(id), &u)
	if err == nil && !ok {
		err = fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	return u, err
}

// membership reads a user's membership of a site; found is false when
// there is none.
func (r boltReader) membership(site SiteID, user UserID) (m Membership, found bool, err error) {
	n := r.get(bucketUserSites, key(string(user), string(site)))
	if n == nil {
		return m, false, nil
	}
	m, err = decodeMember(r.get(bucketMembers, append(siteNumKey(site, Number(n)), user...)))
	return m, err == nil, err
}

func (r boltReader) device(id DeviceID) (Device, bool, error) {
	var d Device
	ok, err := r.getJSON(bucketDevices, []byte(id), &d)
	return d, ok, err
}

// listEntries lists the entries of a site, in CompareNumbers order, keeping
// those for which keep returns true.
func (r boltReader) listEntries(site SiteID, keep func(entryHeader) bool) ([]Entry, error) {
	if _, err := r.site(site); err != nil {
		return nil, err
	}
	prefix := key(string(site), "")
	var out []Entry
	err := scanPrefix(r.bucket(bucketEntries), prefix, func(k, v []byte) (bool, error) {
		n, _, ok := splitNum(k[len(prefix):])
		h, name, err := decodeEntry(v)
		if err != nil || !ok {
			return false, fmt.Errorf("bolt: corrupt entry key %q: %v", k, err)
		}
		if keep(h) {
			out = append(out, Entry{Site: site, Number: n, Name: name})
		}
		return true, nil
	})
	return out, err
}

// Site returns one site. The answer is kept until the next write (readCache).
func (b *Bolt) Site(ctx context.Context, id SiteID) (Site, error) {
	return through(ctx, b.cache, &b.cache.sites, id, func() (s Site, err error) {
		err = b.view(ctx, func(r boltReader) error { s, err = r.site(id); return err })
		return s, err
	})
}

// SiteByName finds a site by parent ("" for a top-level site) and name.
func (b *Bolt) SiteByName(ctx context.Context, parent SiteID, name string) (s Site, err error) {
	err = b.view(ctx, func(r boltReader) error {
		id := r.bucket(bucketSiteNames).Get(key(string(parent), name))
		if id == nil {
			return fmt.Errorf("site named %q: %w", name, ErrNotFound)
		}
		s, err = r.site(SiteID(id))
		return err
	})
	return s, err
}

// Sites lists every site, ordered by ID.
func (b *Bolt) Sites(ctx context.Context) (out []Site, err error) {
	err = b.view(ctx, func(r boltReader) error {
		return r.bucket(bucketSites).ForEach(func(k, _ []byte) error {
			s, err := r.site(SiteID(k))
			out = append(out, s)
			return err
		})
	})
	return out, err
}

// Entries lists every call ID of a site, in CompareNumbers order.
func (b *Bolt) Entries(ctx context.Context, site SiteID) (out []Entry, err error) {
	err = b.view(ctx, func(r boltReader) error {
		out, err = r.listEntries(site, func(entryHeader) bool { return true })
		return err
	})
	return out, err
}

// DoorDirectory lists the entries with a ringable member or a monitor, from
// the counters kept on each entry (no scan of members).
func (b *Bolt) DoorDirectory(ctx context.Context, site SiteID) (out []Entry, err error) {
	err = b.view(ctx, func(r boltReader) error {
		out, err = r.listEntries(site, entryHeader.shown)
		return err
	})
	return out, err
}

// UserByEmail finds an app user by e-mail, ignoring case.
func (b *Bolt) UserByEmail(ctx context.Context, email string) (u User, err error) {
	err = b.view(ctx, func(r boltReader) error {
		e, err := NormalizeEmail(email)
		if err != nil {
			return fmt.Errorf("user with e-mail %q: %w", email, ErrNotFound)
		}
		id := r.bucket(bucketEmails).Get([]byte(e))
		if id == nil {
			return fmt.Errorf("user with e-mail %s: %w", e, ErrNotFound)
		}
		u, err = r.user(UserID(id))
		return err
	})
	return u, err
}

// Members lists the memberships of one call ID, ordered by user ID. The
// answer is kept until the next write (readCache).
func (b *Bolt) Members(ctx context.Context, site SiteID, number Number) ([]Membership, error) {
	return throughSlice(ctx, b.cache, &b.cache.members, siteNum{site, number}, func() ([]Membership, error) {
		return b.members(ctx, site, number)
	})
}

// members is Members read from the store.
func (b *Bolt) members(ctx context.Context, site SiteID, number Number) (out []Membership, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if err := r.requireEntry(site, number); err != nil {
			return err
		}
		return scanPrefix(r.bucket(bucketMembers), siteNumKey(site, number), func(_, v []byte) (bool, error) {
			m, err := decodeMember(v)
			out = append(out, m)
			return err == nil, err
		})
	})
	return out, err
}

// Memberships lists every membership of a user, ordered by site ID.
func (b *Bolt) Memberships(ctx context.Context, user UserID) (out []Membership, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if _, err := r.user(user); err != nil {
			return err
		}
		prefix := key(string(user), "")
		members := r.bucket(bucketMembers)
		return scanPrefix(r.bucket(bucketUserSites), prefix, func(k, v []byte) (bool, error) {
			site := SiteID(k[len(prefix):])
			m, err := decodeMember(members.Get(append(siteNumKey(site, Number(v)), user...)))
			out = append(out, m)
			return err == nil, err
		})
	})
	return out, err
}

// CountMembers returns the number of app users of a site, from a counter.
func (b *Bolt) CountMembers(ctx context.Context, site SiteID) (n int, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if _, err := r.site(site); err != nil {
			return err
		}
		n = decodeCount(r.bucket(bucketMemberCount).Get([]byte(site)))
		return nil
	})
	return n, err
}

// User returns one app user.
func (b *Bolt) User(ctx context.Context, id UserID) (u User, err error) {
	err = b.view(ctx, func(r boltReader) error { u, err = r.user(id); return err })
	return u, err
}

// SiteMembers lists every membership of a site, in key order: by call ID,
// then user ID.
func (b *Bolt) SiteMembers(ctx context.Context, site SiteID) (out []Membership, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if err := r.requireSite(site); err != nil {
			return err
		}
		return scanPrefix(r.bucket(bucketMembers), key(string(site), ""), func(_, v []byte) (bool, error) {
			m, err := decodeMember(v)
			out = append(out, m)
			return err == nil, err
		})
	})
	return out, err
}

// SiteDevices lists a site's door stations and monitors, ordered by ID.
func (b *Bolt) SiteDevices(ctx context.Context, site SiteID) (out []Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if err := r.requireSite(site); err != nil {
			return err
		}
		for _, kind := range []DeviceKind{KindDoorStation, KindMonitor} {
			err := scanPrefix(r.bucket(bucketDeviceNames), key(string(kind), string(site), ""), func(_, id []byte) (bool, error) {
				d, ok, err := r.device(DeviceID(id))
				if ok {
					out = append(out, d)
				}
				return err == nil, err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}

// UserDevices lists a user's app devices, ordered by ID.
func (b *Bolt) UserDevices(ctx context.Context, user UserID) (out []Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		if err := r.requireUser(user); err != nil {
			return err
		}
		return scanPrefix(r.bucket(bucketAppDevices), key(string(user), ""), func(k, _ []byte) (bool, error) {
			d, ok, err := r.device(DeviceID(k[len(user)+1:]))
			if ok {
				out = append(out, d)
			}
			return err == nil, err
		})
	})
	return out, err
}

// DB is the bbolt file, shared with the account records (internal/kv),
// which keep to their own bucket: the directory's buckets are written only
// by Apply, which readCache relies on.
func (b *Bolt) DB() *bbolt.DB { return b.db }

// CallingDoors lists the door stations of other sites whose CallSites name
// site, ordered by ID. It scans every door station rather than keeping a
// reverse index: it serves a rare admin page, and there is then no index
// to keep in step with every device write, nor to build for a store
// written before it. Only records holding the site's quoted ID are
// decoded, which keeps a scan of 10,000 door stations to a few
// milliseconds (BenchmarkCallingDoors).
func (b *Bolt) CallingDoors(ctx context.Context, site SiteID) (out []Device, err error) {
	quoted := []byte(`"` + string(site) + `"`)
	err = b.view(ctx, func(r boltReader) error {
		if err := r.requireSite(site); err != nil {
			return err
		}
		devices, n := r.bucket(bucketDevices), 0
		return scanPrefix(r.bucket(bucketDeviceNames), key(string(KindDoorStation), ""), func(_, id []byte) (bool, error) {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return false, err
				}
			}
			v := devices.Get(id)
			if !bytes.Contains(v, quoted) {
				return true, nil
			}
			var d Device
			if err := json.Unmarshal(v, &d); err != nil {
				return false, fmt.Errorf("bolt: corrupt record %q in %s: %w", id, bucketDevices, err)
			}
			if d.CallsFromElsewhere(site) {
				out = append(out, d)
			}
			return true, nil
		})
	})
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}
