package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Store keeps the directory. Two implementations exist: Bolt (embedded, one
// node) and Redis (shared by many nodes). Every implementation passes the
// conformance suite in directory/storetest.
//
// Writes go through Apply, which checks every rule of rules.go and commits a
// batch of operations atomically: all or nothing.
type Store interface {
	// Apply commits ops atomically, in order; the first rule broken aborts
	// the whole batch and is returned (wrapping ErrLimit, ErrConflict,
	// ErrInvalid or ErrNotFound) naming the op's index and the rule.
	Apply(ctx context.Context, ops ...Op) error

	// Site returns one site.
	Site(ctx context.Context, id SiteID) (Site, error)
	// SiteByName finds a site by parent and name (names are unique among siblings).
	SiteByName(ctx context.Context, parent SiteID, name string) (Site, error)
	// Sites lists every site.
	Sites(ctx context.Context) ([]Site, error)

	// Entries lists every call ID of a site, ordered by number.
	Entries(ctx context.Context, site SiteID) ([]Entry, error)
	// DoorDirectory lists the entries a door station of site shows: those
	// with at least one ringable member or a monitor, ordered by number.
	DoorDirectory(ctx context.Context, site SiteID) ([]Entry, error)

	// User returns one app user.
	User(ctx context.Context, id UserID) (User, error)
	// UserByEmail finds an app user by e-mail (case-insensitive).
	UserByEmail(ctx context.Context, email string) (User, error)
	// Members lists the memberships of one call ID of a site.
	Members(ctx context.Context, site SiteID, number Number) ([]Membership, error)
	// Memberships lists every membership of a user, across sites.
	Memberships(ctx context.Context, user UserID) ([]Membership, error)
	// SiteMembers lists every membership of a site, ordered by call ID
	// (CompareNumbers), then user ID.
	SiteMembers(ctx context.Context, site SiteID) ([]Membership, error)
	// CountMembers returns the number of app users of a site.
	CountMembers(ctx context.Context, site SiteID) (int, error)

	// Device returns one device.
	Device(ctx context.Context, id DeviceID) (Device, error)
	// DeviceByName finds a device by scope (site for door stations and
	// monitors, user for app devices) and name.
	DeviceByName(ctx context.Context, kind DeviceKind, scope string, name string) (Device, error)
	// SiteDevices lists the door stations and monitors of a site (those
	// whose Site it is), ordered by ID.
	SiteDevices(ctx context.Context, site SiteID) ([]Device, error)
	// CallingDoors lists the door stations of other sites that call site
	// (whose CallSites name it), ordered by ID, so that the called site's
	// managers can see and revoke them. A door station whose own Site is
	// site is not listed: it is in SiteDevices. Sites are never deleted,
	// and PutDevice refuses CallSites naming a missing site, so every
	// site a door calls exists.
	CallingDoors(ctx context.Context, site SiteID) ([]Device, error)
	// UserDevices lists the app devices of a user, ordered by ID.
	UserDevices(ctx context.Context, user UserID) ([]Device, error)
	// DeviceByToken finds the device a token authenticates, in O(1).
	DeviceByToken(ctx context.Context, token TokenHash) (Device, error)

	// Ringable returns the devices a call to (site, number) rings: every app
	// device of every ringable member, and the monitors of the number. It
	// returns ErrNotFound when the number does not exist in the site.
	Ringable(ctx context.Context, site SiteID, number Number) ([]Device, error)
	// Targets returns the (site, number) pairs a device rings for.
	Targets(ctx context.Context, d Device) ([]Target, error)

	// Subscribe calls fn after every committed change, from any goroutine.
	// fn must not block. The returned func stops the calls.
	Subscribe(fn func(Change)) (cancel func())

	// Close releases the store.
	Close() error
}

// Op is one write operation in a batch given to Store.Apply.
type Op interface{ isOp() }

// PutSite creates or replaces a site. Settings are validated; the parent
// must exist. With Was, the site as an edit read it, it only replaces that:
// ErrStale when it has changed since.
type PutSite struct {
	Site Site
	Was  *Site
}

// PutEntry creates or renames a call ID of a site.
type PutEntry struct{ Entry Entry }

// DeleteEntry removes a call ID; it must have no members and no monitors.
type DeleteEntry struct {
	Site   SiteID
	Number Number
}

// PutUser creates or updates an app user; the e-mail must be unique.
type PutUser struct{ User User }

// PutMembership creates or replaces a user's membership of a site (one per
// user and site). Enforces 6 app users per call ID and 59,994 per site; the
// call ID must exist. With Was, the membership as an edit read it, it only
// replaces that: ErrNotFound when the membership is gone (an edit must not
// bring back a user deleted meanwhile), ErrStale when it has changed since
// (two edits at once must not undo each other's fields).
type PutMembership struct {
	Membership Membership
	Was        *Membership
}

// DeleteMembership removes a user from a site.
type DeleteMembership struct {
	Site SiteID
	User UserID
}

// PutDevice creates or replaces a device; its name must be unique in its
// scope. With Was, the device as an edit read it, it only replaces that:
// ErrNotFound when the device is gone, ErrStale when it has changed since.
type PutDevice struct {
	Device Device
	Was    *Device
}

// DeleteDevice removes a device and its token.
type DeleteDevice struct{ ID DeviceID }

// SetDeviceToken replaces a device's token (the old one stops working).
type SetDeviceToken struct {
	ID    DeviceID
	Token TokenHash
}

func (PutSite) isOp()          {}
func (PutEntry) isOp()         {}
func (DeleteEntry) isOp()      {}
func (PutUser) isOp()          {}
func (PutMembership) isOp()    {}
func (DeleteMembership) isOp() {}
func (PutDevice) isOp()        {}
func (DeleteDevice) isOp()     {}
func (SetDeviceToken) isOp()   {}

// OpError is the error of a batch given to Store.Apply: the index of the
// op that broke a rule, the op, and the rule's error.
type OpError struct {
	Index int
	Op    Op
	Err   error
}

func (e *OpError) Error() string { return fmt.Sprintf("op %d (%T): %v", e.Index, e.Op, e.Err) }

// Unwrap gives the rule's error (wrapping ErrLimit, ErrConflict, …).
func (e *OpError) Unwrap() error { return e.Err }

// checkWas checks an edit's Was, the record as the edit read it, against
// cur, the record stored now (found false: there is none): ErrNotFound
// when it is gone, ErrStale when it has changed since. what names it.
func checkWas[T any](what string, was *T, cur T, found bool, same func(a, b T) bool) error {
	switch {
	case was == nil:
		return nil
	case !found:
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case !same(cur, *was):
		return fmt.Errorf("%s: %w", what, ErrStale)
	}
	return nil
}

func equal[T comparable](a, b T) bool { return a == b }

func membershipName(m Membership) string {
	return fmt.Sprintf("membership of user %s in site %s", m.User, m.Site)
}

// sameDevice reports whether a and b are the same record: the same JSON,
// as the stores keep it (no call sites and an empty list are the same).
func sameDevice(a, b Device) bool {
	ja, erra := json.Marshal(a)
	jb, errb := json.Marshal(b)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}
