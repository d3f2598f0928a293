package directory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
)

// Device returns one device.
func (b *Bolt) Device(ctx context.Context, id DeviceID) (d Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		var ok bool
		d, ok, err = r.device(id)
		if err == nil && !ok {
			err = fmt.Errorf("device %s: %w", id, ErrNotFound)
		}
		return err
	})
	return d, err
}

// DeviceByName finds a device by kind, scope (site of a door station or
// monitor, user of an app device) and name.
func (b *Bolt) DeviceByName(ctx context.Context, kind DeviceKind, scope string, name string) (d Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		id := r.bucket(bucketDeviceNames).Get(key(string(kind), scope, name))
		if id == nil {
			return fmt.Errorf("%s named %q: %w", kind, name, ErrNotFound)
		}
		var ok bool
		d, ok, err = r.device(DeviceID(id))
		if err == nil && !ok {
			err = fmt.Errorf("bolt: device name index points to missing device %s", id)
		}
		return err
	})
	return d, err
}

// DeviceByToken finds the device a token authenticates: one index lookup
// and one record. The answer is kept until the next write (readCache); the
// caller gets its own copy of CallSites.
func (b *Bolt) DeviceByToken(ctx context.Context, token TokenHash) (Device, error) {
	d, err := through(ctx, b.cache, &b.cache.tokens, token, func() (Device, error) {
		return b.deviceByToken(ctx, token)
	})
	d.CallSites = slices.Clone(d.CallSites)
	return d, err
}

// deviceByToken is DeviceByToken read from the store.
func (b *Bolt) deviceByToken(ctx context.Context, token TokenHash) (d Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		id := r.bucket(bucketTokens).Get(token[:])
		if id == nil {
			return fmt.Errorf("device token: %w", ErrNotFound)
		}
		var ok bool
		d, ok, err = r.device(DeviceID(id))
		if err == nil && !ok {
			err = fmt.Errorf("bolt: token index points to missing device %s", id)
		}
		return err
	})
	return d, err
}

// Ringable returns the app devices of the ringable members of (site, number)
// and its monitors. It is the call hot path: it reads the entry record, the
// (at most 6) member records' flag bytes, and the app-device and monitor
// index records, which carry each device's name, so no JSON is decoded.
// The answer is kept until the next write (readCache).
func (b *Bolt) Ringable(ctx context.Context, site SiteID, number Number) ([]Device, error) {
	return throughSlice(ctx, b.cache, &b.cache.rings, siteNum{site, number}, func() ([]Device, error) {
		return b.ringable(ctx, site, number)
	})
}

// ringable is Ringable read from the store.
func (b *Bolt) ringable(ctx context.Context, site SiteID, number Number) (out []Device, err error) {
	err = b.view(ctx, func(r boltReader) error {
		prefix := siteNumKey(site, number)
		if r.bucket(bucketEntries).Get(prefix) == nil {
			return r.requireEntry(site, number)
		}
		apps := r.bucket(bucketAppDevices).Cursor() // one cursor, re-sought per member
		out = make([]Device, 0, MaxUsersPerNumber+1)
		var userPrefix []byte
		err := scanPrefix(r.bucket(bucketMembers), prefix, func(k, v []byte) (bool, error) {
			if len(v) == 0 || v[0]&flagRingable == 0 {
				return true, nil
			}
			userPrefix = append(append(userPrefix[:0], k[len(prefix):]...), 0)
			user := UserID(userPrefix[:len(userPrefix)-1])
			for k, v := apps.Seek(userPrefix); k != nil && bytes.HasPrefix(k, userPrefix); k, v = apps.Next() {
				out = append(out, Device{ID: DeviceID(k[len(userPrefix):]), Kind: KindApp, Name: string(v), User: user})
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		return scanPrefix(r.bucket(bucketMonitors), prefix, func(k, v []byte) (bool, error) {
			out = append(out, Device{ID: DeviceID(k[len(prefix):]), Kind: KindMonitor, Name: string(v), Site: site, Number: number})
			return true, nil
		})
	})
	return out, err
}

// Targets returns the (site, number) pairs d rings for: a monitor its own;
// an app device every ringable membership of its user, ordered by site ID;
// a door station none.
func (b *Bolt) Targets(ctx context.Context, d Device) ([]Target, error) {
	return targetsOf(ctx, d, func(user UserID) ([]Target, error) {
		return throughSlice(ctx, b.cache, &b.cache.targets, user, func() ([]Target, error) {
			return b.userTargets(ctx, user)
		})
	})
}

// userTargets is what an app device of user rings for, read from the
// store: the call IDs where user is a ringable member.
func (b *Bolt) userTargets(ctx context.Context, user UserID) (out []Target, err error) {
	err = b.view(ctx, func(r boltReader) error {
		prefix := key(string(user), "")
		members := r.bucket(bucketMembers)
		return scanPrefix(r.bucket(bucketUserSites), prefix, func(k, v []byte) (bool, error) {
			site, n := SiteID(k[len(prefix):]), Number(v)
			m := members.Get(append(siteNumKey(site, n), user...))
			if len(m) > 0 && m[0]&flagRingable != 0 {
				out = append(out, Target{Site: site, Number: n})
			}
			return true, nil
		})
	})
	return out, err
}
