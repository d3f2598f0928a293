package directory

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Device returns one device.
func (r *Redis) Device(ctx context.Context, id DeviceID) (d Device, err error) {
	err = r.getJSON(ctx, r.keys.device(id), "device "+string(id), &d)
	return d, err
}

// DeviceByName finds a device by kind, scope (site of a door station or
// monitor, user of an app device) and name: two round trips.
func (r *Redis) DeviceByName(ctx context.Context, kind DeviceKind, scope string, name string) (Device, error) {
	if err := ctx.Err(); err != nil {
		return Device{}, err
	}
	what := fmt.Sprintf("%s named %q", kind, name)
	id, err := record(r.client.Get(ctx, r.keys.deviceName(kind, scope, name)), what)
	if err != nil {
		return Device{}, err
	}
	var d Device
	err = r.getJSON(ctx, r.keys.device(DeviceID(id)), what, &d)
	return d, err
}

// DeviceByToken finds the device a token authenticates: one GET of the
// token record, which holds a copy of the device, in a pipeline shared with
// the other hellos of the moment.
func (r *Redis) DeviceByToken(ctx context.Context, token TokenHash) (d Device, err error) {
	key := r.keys.token(token)
	var get *redis.StringCmd
	if err := r.helloRead(ctx, func(p redis.Pipeliner) { get = p.Get(ctx, key) }); err != nil {
		return d, err
	}
	return d, decodeJSON(get, key, "device token", &d)
}

// devices reads the device records of ids (one pipelined round trip),
// skipping any deleted meanwhile, ordered by ID.
func (r *Redis) devices(ctx context.Context, ids []string) ([]Device, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return jsonRecords[Device](ctx, r, ids, func(id string) string { return r.keys.device(DeviceID(id)) }, "device")
}

// SiteDevices lists a site's door stations and monitors: two round trips.
// A device that moved to another site between the two is left out: its
// record names a site this one's managers may have no role on.
func (r *Redis) SiteDevices(ctx context.Context, site SiteID) ([]Device, error) {
	ds, err := r.indexedDevices(ctx, site, r.keys.siteDevices(site))
	return slices.DeleteFunc(ds, func(d Device) bool { return d.Site != site }), err
}

// CallingDoors lists the door stations of other sites that call site,
// from the site's callers index (redisCallersKey): two round trips. A door
// changed between the two (no longer calling site, or moved into it) is
// left out, as Bolt leaves it out: its record may now name a site the
// called site's managers have no business with.
func (r *Redis) CallingDoors(ctx context.Context, site SiteID) ([]Device, error) {
	ds, err := r.indexedDevices(ctx, site, r.keys.callers(site))
	return slices.DeleteFunc(ds, func(d Device) bool { return !d.CallsFromElsewhere(site) }), err
}

// indexedDevices reads the devices a hash of site's (index, keyed by
// device ID) names, or ErrNotFound when there is no such site.
func (r *Redis) indexedDevices(ctx context.Context, site SiteID, index string) ([]Device, error) {
	all, err := ifExists(ctx, r, r.keys.site(site), "site "+string(site), func(p redis.Pipeliner) *redis.StringSliceCmd {
		return p.HKeys(ctx, index)
	})
	if err != nil {
		return nil, err
	}
	return r.devices(ctx, all.Val())
}

// UserDevices lists a user's app devices: two round trips.
func (r *Redis) UserDevices(ctx context.Context, user UserID) ([]Device, error) {
	all, err := ifExists(ctx, r, r.keys.user(user), "user "+string(user), func(p redis.Pipeliner) *redis.StringSliceCmd {
		return p.HKeys(ctx, r.keys.userApps(user))
	})
	if err != nil {
		return nil, err
	}
	return r.devices(ctx, all.Val())
}
