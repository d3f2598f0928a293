// Package directory is foyer's domain model: sites, the call IDs dialled on
// their door stations, app users and their per-site memberships, and devices.
// Its rules (limits, who is ringable, who is shown on a door station) live in
// rules.go and are enforced by every Store implementation through Apply.
package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SiteID identifies a site (a location). Generated, opaque.
type SiteID string

// UserID identifies an app user (a person, known globally by e-mail). Generated, opaque.
type UserID string

// DeviceID identifies a connected endpoint. Generated, opaque.
type DeviceID string

// Number is what a visitor dials on a door station: 1–6 digits, unique within
// a site. DESIGN.md calls it a "call ID"; the code says Number so it is never
// confused with the identifier of one call in the signalling protocol.
type Number string

// DeviceKind is the kind of a device, as named on the wire.
type DeviceKind string

// The device kinds of DESIGN.md.
const (
	KindDoorStation DeviceKind = "door_station"
	KindMonitor     DeviceKind = "monitor"
	KindApp         DeviceKind = "app"
)

// Status of an app user's membership: pending until the first successful app
// login, then active. Pending users are neither rung nor shown.
type Status string

// Membership statuses.
const (
	StatusPending Status = "pending"
	StatusActive  Status = "active"
)

// Licence of an app user's membership. Inactive licences are neither rung nor shown.
type Licence string

// Licence states.
const (
	LicenceActive   Licence = "active"
	LicenceInactive Licence = "inactive"
)

// Site is a location with its own call IDs and settings; sub-sites name a parent.
type Site struct {
	ID       SiteID   `json:"id"`
	Name     string   `json:"name"`
	ParentID SiteID   `json:"parent_id,omitempty"`
	Settings Settings `json:"settings"`
}

// Settings are a site's call and retention settings. See DefaultSettings for
// the values a new site gets and Validate for the allowed ranges.
type Settings struct {
	RingTimeout      time.Duration `json:"ring_timeout"`
	CallTimeLimit    time.Duration `json:"call_time_limit"`
	DoorOpenDuration time.Duration `json:"door_open_duration"`
	LogRetention     time.Duration `json:"log_retention"`
	// Preview sends the door station's video to ringing devices before answer.
	Preview bool `json:"preview"`
	// OpenDoorWhileRinging lets a ringing (not yet answering) device open the door.
	OpenDoorWhileRinging bool `json:"open_door_while_ringing"`
	// VisitorPasses lets residents make keypad PINs for their visitors from
	// the app (accounts.AccessCode.Pass). On for a new site; a site stored
	// before the setting existed reads it off.
	VisitorPasses bool `json:"visitor_passes"`
	// RemoteOpen lets residents open the site's door stations from the app
	// outside a call (the visitor they expect, their own arrival). Off
	// unless the site's managers turn it on.
	RemoteOpen bool `json:"remote_open"`
}

// Entry is one call ID of a site with the display name a door station shows.
type Entry struct {
	Site   SiteID `json:"site"`
	Number Number `json:"number"`
	Name   string `json:"name"`
}

// User is an app user: one person, identified globally by e-mail.
type User struct {
	ID    UserID `json:"id"`
	Email string `json:"email"` // stored lower-case
}

// Membership places an app user on one call ID of one site.
type Membership struct {
	Site        SiteID  `json:"site"`
	User        UserID  `json:"user"`
	Number      Number  `json:"number"`
	DisplayName string  `json:"display_name"`
	Licence     Licence `json:"licence"`
	Status      Status  `json:"status"`
}

// Device is a connected endpoint: a door station, an indoor monitor, or one
// install of the app.
type Device struct {
	ID   DeviceID   `json:"id"`
	Kind DeviceKind `json:"kind"`
	// Name is unique within its scope: the site for door stations and
	// monitors, the user for app devices.
	Name string `json:"name"`
	// Site is the site of a door station or monitor; empty for app devices.
	Site SiteID `json:"site,omitempty"`
	// Number is the call ID a monitor rings for; empty for other kinds.
	Number Number `json:"number,omitempty"`
	// User owns an app device; empty for other kinds.
	User UserID `json:"user,omitempty"`
	// CallSites are further sites a door station may call, besides Site.
	CallSites []SiteID `json:"call_sites,omitempty"`
}

// CallsFromElsewhere reports whether d is a door station of another site
// that may call site: one that site's CallingDoors lists.
func (d Device) CallsFromElsewhere(site SiteID) bool {
	return d.Kind == KindDoorStation && d.Site != site && slices.Contains(d.CallSites, site)
}

// Target is a (site, call ID) pair a device rings for.
type Target struct {
	Site   SiteID
	Number Number
}

// targetsOf is Store.Targets for every kind of device: a monitor rings for
// its own call ID and a door station for none, which needs no read; for an
// app device it asks user, which reads its user's ringable memberships.
func targetsOf(ctx context.Context, d Device, user func(UserID) ([]Target, error)) ([]Target, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch d.Kind {
	case KindDoorStation:
		return nil, nil
	case KindMonitor:
		return []Target{{Site: d.Site, Number: d.Number}}, nil
	case KindApp:
		return user(d.User)
	default:
		return nil, fmt.Errorf("device kind %q: %w", string(d.Kind), ErrInvalid)
	}
}

// Change says what a committed write touched, so that live connections can
// react: door stations of Site get a fresh directory, connections of Device
// are re-authenticated, the app connections of User (whose memberships
// changed) re-read their sites. One field is set.
type Change struct {
	Site   SiteID   `json:",omitempty"`
	Device DeviceID `json:",omitempty"`
	User   UserID   `json:",omitempty"`
}

// Errors returned by stores and rules. Callers compare with errors.Is; the
// wrapped message names the object or the rule.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict") // e.g. a call ID or name already taken
	ErrLimit    = errors.New("limit")    // e.g. a seventh app user on one call ID
	ErrInvalid  = errors.New("invalid")  // a value outside its rule
	ErrLocked   = errors.New("locked")   // the store is held by another process
	// ErrUnavailable: the shared store (Redis) did not answer, or is not
	// serving for now (loading its data, failing over, refusing clients).
	// The caller may try again in a few seconds; a write that failed so
	// may or may not have been made, all of it or none (Apply's journal).
	// The stores themselves return go-redis's errors: the server marks
	// them (cmd/foyer's hook on the stores' client).
	ErrUnavailable = errors.New("store unavailable")
	// ErrFull: the shared store (Redis) refused a write for want of memory
	// (maxmemory). What Apply refused so is not applied, unless it failed
	// after its commit point: then the next write applies it (Apply's
	// journal), once there is room.
	ErrFull = errors.New("store full")
	// ErrStale: a record changed between the read an edit was made from
	// and its write (PutMembership.Was, PutDevice.Was); it wraps
	// ErrConflict. The caller reads again and repeats its edit.
	ErrStale = fmt.Errorf("%w: another edit changed it meanwhile; read it again and retry", ErrConflict)
)
