package directory_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// harbourDevices are the devices named in testdata/harbour.yaml, by kind.
var harbourDevices = map[string]directory.DeviceKind{
	"front-door": directory.KindDoorStation, "garage-door": directory.KindDoorStation, "quay-door": directory.KindDoorStation,
	"hall-101": directory.KindMonitor, "anna-phone": directory.KindApp, "anna-tablet": directory.KindApp,
	"bram-phone": directory.KindApp, "carol-phone": directory.KindApp, "anna-work-phone": directory.KindApp,
}

// provision parses data and applies it to s.
func provision(t *testing.T, s directory.Store, data []byte) (map[string]string, error) {
	t.Helper()
	f, err := directory.ParseProvision(data)
	if err != nil {
		return nil, err
	}
	return directory.Provision(context.Background(), s, f)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// snapshot is everything the directory holds, read through the interface.
type snapshot struct {
	Sites    []directory.Site
	Entries  map[directory.SiteID][]directory.Entry
	Members  map[string][]directory.Membership
	Devices  map[string]directory.Device
	Counts   map[directory.SiteID]int
	UserByID map[string]directory.User
}

func takeSnapshot(t *testing.T, s directory.Store, deviceNames map[string]directory.DeviceKind) snapshot {
	t.Helper()
	ctx := context.Background()
	snap := snapshot{Entries: map[directory.SiteID][]directory.Entry{}, Members: map[string][]directory.Membership{},
		Devices: map[string]directory.Device{}, Counts: map[directory.SiteID]int{}, UserByID: map[string]directory.User{}}
	var err error
	snap.Sites, err = s.Sites(ctx)
	must(t, err)
	for _, site := range snap.Sites {
		es, err := s.Entries(ctx, site.ID)
		must(t, err)
		snap.Entries[site.ID] = es
		snap.Counts[site.ID], err = s.CountMembers(ctx, site.ID)
		must(t, err)
		for _, e := range es {
			ms, err := s.Members(ctx, site.ID, e.Number)
			must(t, err)
			snap.Members[string(site.ID)+"/"+string(e.Number)] = ms
			for _, m := range ms {
				for _, email := range []string{"anna@example.com", "bram@example.com", "carol@example.com"} {
					if u, err := s.UserByEmail(ctx, email); err == nil && u.ID == m.User {
						snap.UserByID[email] = u
					}
				}
			}
		}
		for name, kind := range deviceNames {
			if kind != directory.KindApp {
				if d, err := s.DeviceByName(ctx, kind, string(site.ID), name); err == nil {
					snap.Devices[name] = d
				}
			}
		}
	}
	for _, u := range snap.UserByID {
		for name, kind := range deviceNames {
			if d, err := s.DeviceByName(ctx, kind, string(u.ID), name); kind == directory.KindApp && err == nil {
				snap.Devices[name] = d
			}
		}
	}
	return snap
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestProvision(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t)
	tokens, err := provision(t, s, readFile(t, "testdata/harbour.yaml"))
	must(t, err)
	if len(tokens) != len(harbourDevices) {
		t.Errorf("got %d tokens, want %d: %v", len(tokens), len(harbourDevices), tokens)
	}
	for name, kind := range harbourDevices {
		d, err := s.DeviceByToken(ctx, directory.HashToken(tokens[name]))
		if err != nil || d.Name != name || d.Kind != kind {
			t.Errorf("token of %s authenticates %+v, %v", name, d, err)
		}
	}

	harbour, err := s.SiteByName(ctx, "", "Harbour View")
	must(t, err)
	quay, err := s.SiteByName(ctx, "", "Quay House")
	must(t, err)
	if want := directory.DefaultSettings(); harbour.Settings != want {
		t.Errorf("Harbour View settings = %+v, want %+v", harbour.Settings, want)
	}
	want := directory.DefaultSettings()
	want.CallTimeLimit, want.DoorOpenDuration, want.Preview, want.VisitorPasses, want.RemoteOpen = 300*time.Second, 8*time.Second, false, false, true
	if quay.Settings != want {
		t.Errorf("Quay House settings = %+v, want %+v", quay.Settings, want)
	}

	bram, err := s.UserByEmail(ctx, "bram@example.com")
	must(t, err)
	ms, err := s.Memberships(ctx, bram.ID)
	must(t, err)
	wantBram := directory.Membership{Site: harbour.ID, User: bram.ID, Number: "101", DisplayName: "Jansen",
		Status: directory.StatusActive, Licence: directory.LicenceActive}
	if len(ms) != 1 || ms[0] != wantBram {
		t.Errorf("bram's memberships = %+v, want [%+v]", ms, wantBram)
	}
	carol, err := s.UserByEmail(ctx, "carol@example.com")
	must(t, err)
	ms, err = s.Memberships(ctx, carol.ID)
	must(t, err)
	if len(ms) != 1 || ms[0].Status != directory.StatusPending || ms[0].DisplayName != "Carol P." || ms[0].Number != "102" {
		t.Errorf("carol's memberships = %+v", ms)
	}
	anna, err := s.UserByEmail(ctx, "anna@example.com")
	must(t, err)
	ms, err = s.Memberships(ctx, anna.ID)
	must(t, err)
	if len(ms) != 2 {
		t.Errorf("anna's memberships = %+v, want 2", ms)
	}

	dir, err := s.DoorDirectory(ctx, harbour.ID)
	must(t, err)
	if len(dir) != 1 || dir[0].Number != "101" || dir[0].Name != "Jansen" {
		t.Errorf("Harbour View door directory = %+v, want only 101 Jansen", dir)
	}
	ring, err := s.Ringable(ctx, harbour.ID, "101")
	must(t, err)
	if len(ring) != 5 { // app devices belong to the user, wherever the file lists them
		t.Errorf("101 rings %d devices, want 5 (anna ×3, bram, hall-101)", len(ring))
	}
	ring, err = s.Ringable(ctx, quay.ID, "7")
	must(t, err)
	if len(ring) != 0 {
		t.Errorf("Quay 7 rings %+v; anna's licence there is inactive", ring)
	}
}

func TestProvisionTwice(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t)
	data := readFile(t, "testdata/harbour.yaml")
	first, err := provision(t, s, data)
	must(t, err)
	before := takeSnapshot(t, s, harbourDevices)
	second, err := provision(t, s, data)
	must(t, err)
	after := takeSnapshot(t, s, harbourDevices)
	if len(before.Devices) != len(harbourDevices) || len(before.UserByID) != 3 {
		t.Fatalf("snapshot saw %d devices and %d users", len(before.Devices), len(before.UserByID))
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("applying the file twice changed the directory:\nbefore %+v\nafter  %+v", before, after)
	}
	for name := range harbourDevices {
		if _, err := s.DeviceByToken(ctx, directory.HashToken(first[name])); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("the first token of %s still works: %v", name, err)
		}
		if d, err := s.DeviceByToken(ctx, directory.HashToken(second[name])); err != nil || d.Name != name {
			t.Errorf("the second token of %s: %+v, %v", name, d, err)
		}
	}
}

// users returns n app users, indented for an ID at line 6.
func users(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "          - email: user%d@example.com\n", i+1)
	}
	return b.String()
}

func TestProvisionBadFiles(t *testing.T) {
	head := "sites:\n  - name: Harbour View\n    ids:\n      - id: \"101\"\n        name: Jansen\n        app_users:\n"
	cases := []struct {
		name, file string
		line       int
		words      []string
		want       error
	}{
		{"7th user", head + users(7), 13, []string{`call ID "101"`, "7th app user (user7@example.com)", "at most 6"}, directory.ErrLimit},
		{"duplicate device", head + "          - email: a@example.com\n            devices: [front-door]\n    door_stations: [front-door]\n",
			9, []string{"front-door", "twice"}, directory.ErrConflict},
		{"bad number", strings.Replace(head, `"101"`, `"12a"`, 1) + users(1), 4, []string{"12a"}, directory.ErrInvalid},
		{"unknown key", head + users(1) + "            colour: blue\n", 8, []string{"colour"}, directory.ErrInvalid},
		{"bad status", head + users(1) + "            status: asleep\n", 8, []string{"asleep", "status"}, directory.ErrInvalid},
		{"bad licence", head + users(1) + "            licence: gold\n", 8, []string{"gold"}, directory.ErrInvalid},
		{"bad e-mail", head + "          - email: not-an-email\n", 7, []string{"not-an-email"}, directory.ErrInvalid},
		{"user on two IDs", head + users(1) + "      - id: \"102\"\n        name: Peeters\n        app_users:\n" + users(1),
			11, []string{"user1@example.com", `"101"`, "one call ID per site"}, directory.ErrConflict},
		{"duplicate ID", head + users(1) + "      - id: \"101\"\n        name: Again\n", 8, []string{"twice"}, directory.ErrConflict},
		// One person spelt in two cases is one user, on two call IDs; anna
		// is in the store already, so its own checks would not see it.
		{"user on two IDs, cased", head + "          - email: Anna@Example.com\n      - id: \"102\"\n        name: Peeters\n        app_users:\n" +
			"          - email: anna@example.com\n", 11, []string{"anna@example.com", `"101"`, "one call ID per site"}, directory.ErrConflict},
		{"missing number", "sites:\n  - name: Harbour View\n    ids:\n      - name: Jansen\n", 4, []string{"needs its number"}, directory.ErrInvalid},
		{"blank display name", head + users(1) + "            display_name: \" \"\n", 8, []string{"display name"}, directory.ErrInvalid},
		{"ring timeout", "sites:\n  - name: A\n    ring_timeout_s: 5\n", 3, []string{"ring timeout"}, directory.ErrInvalid},
		{"ring timeout text", "sites:\n  - name: A\n    ring_timeout_s: 30s\n", 3, []string{"whole number"}, directory.ErrInvalid},
		{"preview text", "sites:\n  - name: A\n    preview: maybe\n", 3, []string{"true or false"}, directory.ErrInvalid},
		{"visitor passes text", "sites:\n  - name: A\n    visitor_passes: 1\n", 3, []string{"visitor_passes", "true or false"}, directory.ErrInvalid},
		{"remote open text", "sites:\n  - name: A\n    remote_open: \"yes\"\n", 3, []string{"remote_open", "true or false"}, directory.ErrInvalid},
		{"missing name", "sites:\n  - ring_timeout_s: 30\n", 2, []string{"site name is missing"}, directory.ErrInvalid},
		{"duplicate key", "sites:\n  - name: A\n    name: B\n", 3, []string{"repeated"}, directory.ErrInvalid},
		{"duplicate site", "sites:\n  - name: A\n  - name: A\n", 3, []string{"twice"}, directory.ErrConflict},
		{"alias", "sites:\n  - &a\n    name: A\n  - *a\n", 4, []string{"alias"}, directory.ErrInvalid},
		{"not YAML", "sites:\n  - name: a\n  b\n", 3, []string{"YAML"}, directory.ErrInvalid},
		{"empty", "", 1, []string{"empty"}, directory.ErrInvalid},
		{"two documents", "sites: []\n---\nsites: []\n", 2, []string{"one YAML document"}, directory.ErrInvalid},
		{"top-level list", "- a\n", 1, []string{"mapping"}, directory.ErrInvalid},
		{"control character", "sites:\n  - name: \"A\x01\"\n", 2, []string{"control"}, directory.ErrInvalid},
	}
	ctx := context.Background()
	s := openBolt(t)
	good, err := provision(t, s, readFile(t, "testdata/harbour.yaml"))
	must(t, err)
	before := takeSnapshot(t, s, harbourDevices)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := provision(t, s, []byte(c.file))
			var pe *directory.ProvisionError
			if !errors.As(err, &pe) || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want a *ProvisionError wrapping %v", err, c.want)
			}
			t.Logf("%v", err)
			if prefix := fmt.Sprintf("line %d: ", c.line); pe.Line != c.line || !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q, want line %d", err, c.line)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if after := takeSnapshot(t, s, harbourDevices); !reflect.DeepEqual(before, after) {
		t.Error("a refused file changed the directory")
	}
	for name := range harbourDevices {
		if _, err := s.DeviceByToken(ctx, directory.HashToken(good[name])); err != nil {
			t.Errorf("a refused file revoked the token of %s: %v", name, err)
		}
	}
}

// TestProvisionSiteLimitInFile: a file alone may not put more than
// MaxUsersPerSite app users in one site; the refusal names the first one
// too many.
func TestProvisionSiteLimitInFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("sites:\n  - name: Tower\n    ids:\n")
	for i := range directory.MaxUsersPerSite/directory.MaxUsersPerNumber + 1 {
		fmt.Fprintf(&b, "      - id: \"%d\"\n        name: Flat %d\n        app_users:\n", i+1, i+1)
		for j := range directory.MaxUsersPerNumber {
			fmt.Fprintf(&b, "          - email: u%d-%d@example.com\n", i+1, j+1)
		}
	}
	_, err := directory.ParseProvision([]byte(b.String()))
	// The first user of the last call ID is one too many. Its line: 3 of
	// head, 9 for each full call ID, 3 of its call ID, then its own.
	full := directory.MaxUsersPerSite / directory.MaxUsersPerNumber
	line := 3 + 9*full + 3 + 1
	var pe *directory.ProvisionError
	if !errors.As(err, &pe) || !errors.Is(err, directory.ErrLimit) || pe.Line != line ||
		!strings.Contains(err.Error(), fmt.Sprintf("u%d-1@example.com is one too many", full+1)) {
		t.Fatalf("got %v, want a limit error at line %d", err, line)
	}
	t.Log(err)
}

func TestProvisionLimitsCountTheStore(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t)
	file := "sites:\n  - name: Harbour View\n    ids:\n      - id: \"101\"\n        name: Jansen\n        app_users:\n"
	_, err := provision(t, s, []byte(file+users(2)))
	must(t, err)
	site, err := s.SiteByName(ctx, "", "Harbour View")
	must(t, err)
	// Four more residents join through the API.
	var ops []directory.Op
	for i := range 4 {
		u := directory.User{ID: directory.UserID(directory.NewID("u_")), Email: fmt.Sprintf("api%d@example.com", i)}
		ops = append(ops, directory.PutUser{User: u}, directory.PutMembership{Membership: directory.Membership{
			Site: site.ID, User: u.ID, Number: "101", DisplayName: "API", Status: directory.StatusActive, Licence: directory.LicenceActive}})
	}
	must(t, s.Apply(ctx, ops...))
	before := takeSnapshot(t, s, nil)

	// The same file still applies (its two users are already counted) …
	_, err = provision(t, s, []byte(file+users(2)))
	must(t, err)
	// … but a third user would make seven.
	_, err = provision(t, s, []byte(file+users(3)))
	var pe *directory.ProvisionError
	if !errors.As(err, &pe) || !errors.Is(err, directory.ErrLimit) || pe.Line != 9 ||
		!strings.Contains(err.Error(), "7th app user (user3@example.com)") || !strings.Contains(err.Error(), "4 app users the store already has") {
		t.Fatalf("got %v, want a limit error at line 9", err)
	}
	t.Log(err)
	// Refused at its second site, a file applies nothing of its first, nor
	// the users it had planned before the limit was seen.
	annexe := "sites:\n  - name: Annexe\n    door_stations: [annexe-door]\n    ids:\n      - id: \"1\"\n        name: Flat 1\n" +
		"        app_users:\n          - email: new@example.com\n            devices: [new-phone]\n"
	_, err = provision(t, s, []byte(annexe+strings.TrimPrefix(file, "sites:\n")+users(3)))
	if !errors.Is(err, directory.ErrLimit) {
		t.Fatalf("got %v, want a limit error", err)
	}
	if site, err := s.SiteByName(ctx, "", "Annexe"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a refused file created site %+v (%v)", site, err)
	}
	for _, email := range []string{"new@example.com", "user3@example.com"} {
		if u, err := s.UserByEmail(ctx, email); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("a refused file created user %+v (%v)", u, err)
		}
	}
	if after := takeSnapshot(t, s, nil); !reflect.DeepEqual(before, after) {
		t.Error("a refused file changed the directory")
	}
}

func TestProvisionMoves(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t)
	// Two full call IDs; the second file swaps one user of each.
	head := "sites:\n  - name: Swap\n    ids:\n"
	id := func(n string, emails ...string) string {
		out := fmt.Sprintf("      - id: %q\n        name: Flat %s\n        monitors: [monitor-%s]\n        app_users:\n", n, n, n)
		for _, e := range emails {
			out += fmt.Sprintf("          - email: %s\n            devices: [%s-phone]\n", e, e[:strings.IndexByte(e, '@')])
		}
		return out
	}
	a := []string{"a1@x.example", "a2@x.example", "a3@x.example", "a4@x.example", "a5@x.example", "a6@x.example"}
	b := []string{"b1@x.example", "b2@x.example", "b3@x.example", "b4@x.example", "b5@x.example", "b6@x.example"}
	_, err := provision(t, s, []byte(head+id("1", a...)+id("2", b...)))
	must(t, err)
	a2 := append([]string{b[0]}, a[1:]...)
	b2 := append([]string{a[0]}, b[1:]...)
	_, err = provision(t, s, []byte(head+id("1", a2...)+id("2", b2...)))
	must(t, err)
	site, err := s.SiteByName(ctx, "", "Swap")
	must(t, err)
	ms, err := s.Members(ctx, site.ID, "1")
	must(t, err)
	b1, err := s.UserByEmail(ctx, "b1@x.example")
	must(t, err)
	found := false
	for _, m := range ms {
		found = found || m.User == b1.ID
	}
	if len(ms) != 6 || !found {
		t.Errorf("Members(1) after the swap = %+v", ms)
	}
	if n, err := s.CountMembers(ctx, site.ID); err != nil || n != 12 {
		t.Errorf("CountMembers = %d, %v; want 12", n, err)
	}
}
