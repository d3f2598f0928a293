// Package storetest is the conformance suite every directory.Store must
// pass. It tests behaviour through the interface only, so the embedded
// (bbolt) and shared (Redis) stores are held to exactly the same contract.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) directory.Store { ... })
//	}
package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// Run runs the whole suite; newStore must return an empty store and close
// it in t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) directory.Store) {
	t.Run("Sites", func(t *testing.T) { testSites(t, newStore) })
	t.Run("Settings", func(t *testing.T) { testSettings(t, newStore) })
	t.Run("Entries", func(t *testing.T) { testEntries(t, newStore) })
	t.Run("Users", func(t *testing.T) { testUsers(t, newStore) })
	t.Run("Memberships", func(t *testing.T) { testMemberships(t, newStore) })
	t.Run("LimitPerNumber", func(t *testing.T) { testLimitPerNumber(t, newStore) })
	t.Run("LimitPerSite", func(t *testing.T) { testLimitPerSite(t, newStore) })
	t.Run("Devices", func(t *testing.T) { testDevices(t, newStore) })
	t.Run("CallingDoors", func(t *testing.T) { testCallingDoors(t, newStore) })
	t.Run("CallingDoorsProvision", func(t *testing.T) { testCallingDoorsProvision(t, newStore) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newStore) })
	t.Run("Lists", func(t *testing.T) { testLists(t, newStore) })
	t.Run("Ringable", func(t *testing.T) { testRingable(t, newStore) })
	t.Run("DoorDirectory", func(t *testing.T) { testDoorDirectory(t, newStore) })
	t.Run("Targets", func(t *testing.T) { testTargets(t, newStore) })
	t.Run("PrefixIDs", func(t *testing.T) { testPrefixIDs(t, newStore) })
	t.Run("Atomicity", func(t *testing.T) { testAtomicity(t, newStore) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, newStore) })
	t.Run("SubscribersReadTheWrite", func(t *testing.T) { testSubscribersReadTheWrite(t, newStore) })
	t.Run("Cancelled", func(t *testing.T) { testCancelled(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore) })
	t.Run("ConcurrentHellos", func(t *testing.T) { testConcurrentHellos(t, newStore) })
	t.Run("ReadsFollowWrites", func(t *testing.T) { testReadsFollowWrites(t, newStore) })
	t.Run("ReadsFollowConcurrentWrites", func(t *testing.T) { testReadsFollowConcurrentWrites(t, newStore) })
	t.Run("HelloReadsFollowWrites", func(t *testing.T) { testHelloReadsFollowWrites(t, newStore) })
}

// apply applies ops and fails the test on error.
func apply(t *testing.T, s directory.Store, ops ...directory.Op) {
	t.Helper()
	if err := s.Apply(context.Background(), ops...); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// applyErr applies ops, expecting an error wrapping want and whose message
// contains every one of words; it returns the error.
func applyErr(t *testing.T, s directory.Store, want error, words []string, ops ...directory.Op) error {
	t.Helper()
	err := s.Apply(context.Background(), ops...)
	if !errors.Is(err, want) {
		t.Fatalf("Apply: got %v, want an error wrapping %v", err, want)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Apply error %q does not mention %q", err, w)
		}
	}
	return err
}

// wantErr fails unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want an error wrapping %v", what, err, want)
	}
}

// isLimit reports whether err wraps directory.ErrLimit.
func isLimit(err error) bool { return errors.Is(err, directory.ErrLimit) }

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newSite returns a valid top-level site with default settings.
func newSite(name string) directory.Site {
	return directory.Site{ID: directory.SiteID(directory.NewID("s_")), Name: name, Settings: directory.DefaultSettings()}
}

// newUser returns a valid user.
func newUser(email string) directory.User {
	return directory.User{ID: directory.UserID(directory.NewID("u_")), Email: email}
}

// member returns an active, licensed membership.
func member(s directory.Site, u directory.User, n directory.Number) directory.Membership {
	return directory.Membership{
		Site: s.ID, User: u.ID, Number: n, DisplayName: "Resident " + string(n),
		Status: directory.StatusActive, Licence: directory.LicenceActive,
	}
}

// appDevice returns an app device of u.
func appDevice(u directory.User, name string) directory.Device {
	return directory.Device{ID: directory.DeviceID(directory.NewID("d_")), Kind: directory.KindApp, Name: name, User: u.ID}
}

// monitor returns a monitor of (s, n).
func monitor(s directory.Site, n directory.Number, name string) directory.Device {
	return directory.Device{ID: directory.DeviceID(directory.NewID("d_")), Kind: directory.KindMonitor, Name: name, Site: s.ID, Number: n}
}

// doorStation returns a door station of s.
func doorStation(s directory.Site, name string) directory.Device {
	return directory.Device{ID: directory.DeviceID(directory.NewID("d_")), Kind: directory.KindDoorStation, Name: name, Site: s.ID}
}

// building is a small site: call ID 101 with one active member (with a
// phone) and a monitor, call ID 102 empty.
type building struct {
	site    directory.Site
	anna    directory.User
	phone   directory.Device
	monitor directory.Device
}

func newBuilding(t *testing.T, s directory.Store, name string) building {
	t.Helper()
	b := building{site: newSite(name), anna: newUser(strings.ToLower(strings.ReplaceAll(name, " ", "")) + "-anna@example.com")}
	b.phone = appDevice(b.anna, "anna-phone")
	b.monitor = monitor(b.site, "101", "hall-101")
	apply(t, s,
		directory.PutSite{Site: b.site},
		directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "101", Name: "Jansen"}},
		directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "102", Name: "Peeters"}},
		directory.PutUser{User: b.anna},
		directory.PutMembership{Membership: member(b.site, b.anna, "101")},
		directory.PutDevice{Device: b.phone},
		directory.PutDevice{Device: b.monitor},
	)
	return b
}

// deviceIDs returns the set of IDs of ds.
func deviceIDs(ds []directory.Device) map[directory.DeviceID]bool {
	out := make(map[directory.DeviceID]bool, len(ds))
	for _, d := range ds {
		out[d.ID] = true
	}
	return out
}

// numbers returns the numbers of es, in order.
func numbers(es []directory.Entry) []directory.Number {
	out := make([]directory.Number, len(es))
	for i, e := range es {
		out[i] = e.Number
	}
	return out
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
