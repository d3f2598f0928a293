package directory

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits of DESIGN.md. Every membership counts towards them, whatever its
// status or licence: a pending user still holds a place on the call ID.
const (
	// MaxUsersPerNumber is the most app users one call ID may have.
	MaxUsersPerNumber = 6
	// MaxUsersPerSite is the most app users one site may have.
	MaxUsersPerSite = 59994
)

// Lengths of names and identifiers, so that one bad client cannot fill the
// store with megabyte strings.
const (
	// MaxNameLen is the most characters a site, call ID, device or display name may have.
	MaxNameLen = 200
	// MaxEmailLen is the longest e-mail address accepted (RFC 5321 path limit).
	MaxEmailLen = 254
	// MaxIDLen is the longest SiteID, UserID or DeviceID accepted.
	MaxIDLen = 64
	// MaxNumberLen is the most digits of a call ID.
	MaxNumberLen = 6
)

// Allowed ranges and defaults of Settings.
const (
	MinRingTimeout       = 10 * time.Second
	MaxRingTimeout       = 180 * time.Second
	DefaultRingTimeout   = 30 * time.Second
	MinCallTimeLimit     = 30 * time.Second
	MaxCallTimeLimit     = 600 * time.Second
	DefaultCallTimeLimit = 180 * time.Second
	MinDoorOpen          = 1 * time.Second
	MaxDoorOpen          = 60 * time.Second
	DefaultDoorOpen      = 5 * time.Second
	MinLogRetention      = 24 * time.Hour
	MaxLogRetention      = 3650 * 24 * time.Hour
	DefaultLogRetention  = 90 * 24 * time.Hour
)

// DefaultSettings returns the settings of a new site: 30 s ring timeout,
// 180 s call time limit, 5 s door opening, 90 days of logs, preview on.
func DefaultSettings() Settings {
	return Settings{
		RingTimeout:      DefaultRingTimeout,
		CallTimeLimit:    DefaultCallTimeLimit,
		DoorOpenDuration: DefaultDoorOpen,
		LogRetention:     DefaultLogRetention,
		Preview:          true,
		VisitorPasses:    true,
	}
}

// Validate reports the first setting outside its range, wrapping ErrInvalid.
// Zero values are not defaults: start from DefaultSettings.
func (s Settings) Validate() error {
	ranges := []struct {
		what      string
		v, lo, hi time.Duration
	}{
		{"ring timeout", s.RingTimeout, MinRingTimeout, MaxRingTimeout},
		{"call time limit", s.CallTimeLimit, MinCallTimeLimit, MaxCallTimeLimit},
		{"door-open duration", s.DoorOpenDuration, MinDoorOpen, MaxDoorOpen},
		{"log retention", s.LogRetention, MinLogRetention, MaxLogRetention},
	}
	for _, r := range ranges {
		if r.v < r.lo || r.v > r.hi {
			return fmt.Errorf("%s %v is outside %v–%v: %w", r.what, r.v, r.lo, r.hi, ErrInvalid)
		}
	}
	return nil
}

// Ringable reports whether the member is rung and shown on door stations:
// only active users with an active licence are.
func (m Membership) Ringable() bool {
	return m.Status == StatusActive && m.Licence == LicenceActive
}

// Validate checks that n is 1–6 ASCII digits. Leading zeros are allowed and
// significant: "07" and "7" are different call IDs.
func (n Number) Validate() error {
	if len(n) == 0 || len(n) > MaxNumberLen {
		return fmt.Errorf("call ID %q must have 1–%d digits: %w", string(n), MaxNumberLen, ErrInvalid)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return fmt.Errorf("call ID %q must be digits only: %w", string(n), ErrInvalid)
		}
	}
	return nil
}

// CompareNumbers orders call IDs numerically ("2" before "101"): shorter
// first, then digit by digit. Every store lists entries in this order.
func CompareNumbers(a, b Number) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(string(a), string(b))
}

// NormalizeEmail returns the stored form of an e-mail address (trimmed,
// lower case, Unicode NFC: one address typed two ways is one person) or an
// error wrapping ErrInvalid if it does not look like one. Look-alikes are
// refused: space, control and invisible format characters anywhere (a
// zero-width space, a no-break space, a right-to-left override), and a
// domain given as an IP literal.
func NormalizeEmail(email string) (string, error) {
	e := norm.NFC.String(strings.ToLower(strings.TrimSpace(email)))
	if e == "" || len(e) > MaxEmailLen {
		return "", fmt.Errorf("e-mail %q must have 1–%d characters: %w", email, MaxEmailLen, ErrInvalid)
	}
	a, err := mail.ParseAddress(e)
	at := strings.LastIndexByte(e, '@')
	if err != nil || a.Address != e || at < 1 || at == len(e)-1 || strings.ContainsAny(e, "<>,;[]") || strings.ContainsFunc(e, lookAlike) {
		return "", fmt.Errorf("%q is not an e-mail address: %w", email, ErrInvalid)
	}
	return e, nil
}

// lookAlike reports a character that makes one address look like another:
// white space of any kind, control and format (invisible) characters.
func lookAlike(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// checkName enforces the rule shared by every name: non-empty, at most
// MaxNameLen characters of valid UTF-8, no control characters.
func checkName(what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return fmt.Errorf("%s must not be empty: %w", what, ErrInvalid)
	case !utf8.ValidString(name):
		return fmt.Errorf("%s %q is not valid UTF-8: %w", what, name, ErrInvalid)
	case utf8.RuneCountInString(name) > MaxNameLen:
		return fmt.Errorf("%s %.40q… is longer than %d characters: %w", what, name, MaxNameLen, ErrInvalid)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%s %q contains a control character: %w", what, name, ErrInvalid)
	}
	return nil
}

// checkID enforces the shape of generated identifiers (see NewID): 1–64
// ASCII letters, digits, '_', '-' or '.'. Stores rely on it to build keys.
func checkID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%s %q must have 1–%d characters: %w", what, id, MaxIDLen, ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%s %q may only contain letters, digits, '_', '-' and '.': %w", what, id, ErrInvalid)
		}
	}
	return nil
}

// checkSite checks a site on its own; the store checks its parent and the
// uniqueness of its name among siblings.
func checkSite(s Site) error {
	if err := checkID("site ID", string(s.ID)); err != nil {
		return err
	}
	if s.ParentID != "" {
		if err := checkID("parent site ID", string(s.ParentID)); err != nil {
			return err
		}
		if s.ParentID == s.ID {
			return fmt.Errorf("site %s cannot be its own parent: %w", s.Name, ErrInvalid)
		}
	}
	if err := checkName("site name", s.Name); err != nil {
		return err
	}
	if err := s.Settings.Validate(); err != nil {
		return fmt.Errorf("site %s: %w", s.Name, err)
	}
	return nil
}

// checkEntry checks a call ID entry on its own; the store checks its site.
func checkEntry(e Entry) error {
	if err := checkID("site ID", string(e.Site)); err != nil {
		return err
	}
	if err := e.Number.Validate(); err != nil {
		return err
	}
	return checkName(fmt.Sprintf("name of call ID %s", e.Number), e.Name)
}

// normalizeUser checks a user and returns it with its e-mail normalised.
func normalizeUser(u User) (User, error) {
	if err := checkID("user ID", string(u.ID)); err != nil {
		return u, err
	}
	e, err := NormalizeEmail(u.Email)
	if err != nil {
		return u, err
	}
	u.Email = e
	return u, nil
}

// checkMembership checks a membership on its own; the store checks that its
// site, user and call ID exist and applies the limits (checkMemberLimits).
func checkMembership(m Membership) error {
	if err := checkID("site ID", string(m.Site)); err != nil {
		return err
	}
	if err := checkID("user ID", string(m.User)); err != nil {
		return err
	}
	if err := m.Number.Validate(); err != nil {
		return err
	}
	if err := checkName("display name", m.DisplayName); err != nil {
		return err
	}
	if err := checkStatus(m.Status); err != nil {
		return err
	}
	return checkLicence(m.Licence)
}

// checkStatus accepts the membership statuses of DESIGN.md.
func checkStatus(s Status) error {
	if s != StatusActive && s != StatusPending {
		return fmt.Errorf("status %q must be %q or %q: %w", string(s), StatusActive, StatusPending, ErrInvalid)
	}
	return nil
}

// checkLicence accepts the licence states of DESIGN.md.
func checkLicence(l Licence) error {
	if l != LicenceActive && l != LicenceInactive {
		return fmt.Errorf("licence %q must be %q or %q: %w", string(l), LicenceActive, LicenceInactive, ErrInvalid)
	}
	return nil
}

// checkDevice enforces the kind rules: a door station has a Site and no
// Number or User; a monitor has a Site and a Number and no User; an app
// device has a User and no Site or Number. Only door stations have CallSites.
// The store checks that the site, user and call ID exist.
func checkDevice(d Device) error {
	if err := checkID("device ID", string(d.ID)); err != nil {
		return err
	}
	if err := checkName("device name", d.Name); err != nil {
		return err
	}
	what := fmt.Sprintf("%s %s", d.Kind, d.Name)
	switch d.Kind {
	case KindDoorStation, KindMonitor:
		if err := checkID("site ID of "+what, string(d.Site)); err != nil {
			return err
		}
		if d.User != "" {
			return fmt.Errorf("%s must not have a user: %w", what, ErrInvalid)
		}
	case KindApp:
		if err := checkID("user ID of "+what, string(d.User)); err != nil {
			return err
		}
		if d.Site != "" || d.Number != "" {
			return fmt.Errorf("%s must not have a site or call ID (it belongs to a user): %w", what, ErrInvalid)
		}
	default:
		return fmt.Errorf("device kind %q must be %q, %q or %q: %w",
			string(d.Kind), KindDoorStation, KindMonitor, KindApp, ErrInvalid)
	}
	switch {
	case d.Kind == KindMonitor:
		if err := d.Number.Validate(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	case d.Number != "":
		return fmt.Errorf("%s must not have a call ID (only monitors have one): %w", what, ErrInvalid)
	}
	if d.Kind != KindDoorStation && len(d.CallSites) > 0 {
		return fmt.Errorf("%s must not have call sites (only door stations have them): %w", what, ErrInvalid)
	}
	for _, s := range d.CallSites {
		if err := checkID("call site of "+what, string(s)); err != nil {
			return err
		}
	}
	return nil
}

// deviceScope is the scope in which a device's name is unique: its site for
// door stations and monitors, its user for app devices.
func deviceScope(d Device) string {
	if d.Kind == KindApp {
		return string(d.User)
	}
	return string(d.Site)
}

// checkMemberLimits applies the limits of DESIGN.md to a membership being
// put on (site, number). onNumber counts the other users already on the
// number, inSite every user of the site; joining tells whether the user is
// new to the number and new to the site (a move within the site keeps its
// place in the site count).
func checkMemberLimits(siteName string, n Number, onNumber, inSite int, newToNumber, newToSite bool) error {
	if newToNumber && onNumber >= MaxUsersPerNumber {
		return fmt.Errorf("call ID %s of site %s already has %d app users (the limit): %w",
			n, siteName, onNumber, ErrLimit)
	}
	if newToSite && inSite >= MaxUsersPerSite {
		return fmt.Errorf("site %s already has %d app users (the limit): %w", siteName, inSite, ErrLimit)
	}
	return nil
}

// The messages of the rules every store checks against its own data, so
// that all stores word them alike.

func errSiteCycle(name, parentName string) error {
	return fmt.Errorf("site %s cannot be under %s: the parents would form a cycle: %w", name, parentName, ErrInvalid)
}

func errSiteNameTaken(name string) error {
	return fmt.Errorf("a site named %q already exists under the same parent: %w", name, ErrConflict)
}

func errEntryInUse(siteName string, n Number, members, monitors int) error {
	return fmt.Errorf("call ID %s of site %s is still used by %d app users and %d monitors: %w",
		n, siteName, members, monitors, ErrConflict)
}

func errEmailTaken(email string) error {
	return fmt.Errorf("e-mail %s is already used by another user: %w", email, ErrConflict)
}

func errDeviceNameTaken(d Device) error {
	what, scope := "a door station", "site"
	switch d.Kind {
	case KindMonitor:
		what = "a monitor"
	case KindApp:
		what, scope = "an app device", "user"
	}
	return fmt.Errorf("%s named %q already exists for the same %s: %w", what, d.Name, scope, ErrConflict)
}
