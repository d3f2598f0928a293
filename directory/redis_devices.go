package directory

import (
	"context"
	"fmt"
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
	id, err := r.index(ctx, r.client.Get(ctx, r.keys.deviceName(kind, scope, name)), what)
	if err != nil {
		return Device{}, err
	}
	var d Device
	err = r.getJSON(ctx, r.keys.device(DeviceID(id)), what, &d)
	return d, err
}

// DeviceByToken finds the device a token authenticates: one GET of the
// token record, which holds a copy of the device.
func (r *Redis) DeviceByToken(ctx context.Context, token TokenHash) (d Device, err error) {
	err = r.getJSON(ctx, r.keys.token(token), "device token", &d)
	return d, err
}
