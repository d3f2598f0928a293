package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Role is an admin's role on a site; it applies to the site's sub-sites too.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner     Role = "owner"     // everything, including roles and ownership
	RoleAdmin     Role = "admin"     // app users, codes, settings, devices, API keys
	RoleInstaller Role = "installer" // devices and provisioning; reads the rest
	RoleViewer    Role = "viewer"    // reads everything
)

// Rank orders roles: a higher rank may do everything a lower one may.
func (r Role) Rank() int {
	switch r {
	case RoleOwner:
		return 4
	case RoleAdmin:
		return 3
	case RoleInstaller:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Admin is an admin account: a property manager, installer or operator.
type Admin struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"password_hash"`
	Created      time.Time `json:"created"`
	// Operator: the deployment's operator (created by `foyer admin
	// create-owner`): owner of every site, creates top-level sites, reads
	// the e-mail outbox.
	Operator bool `json:"operator,omitempty"`
	// TemporaryPassword: the password was made by an invitation and
	// e-mailed (InviteAdmin); a session signed in with it may only choose
	// a new one. Cleared by SetAdminPassword.
	TemporaryPassword bool `json:"temporary_password,omitempty"`
	// TemporarySince is when the temporary password was made: it signs
	// in for InvitationTTL.
	TemporarySince time.Time `json:"temporary_since,omitzero"`
	// InvitedTo is the site whose owner invited the account: only that
	// site's invitation is sent again (SetAdminTempPassword).
	InvitedTo directory.SiteID `json:"invited_to,omitempty"`
	// Invitations are when the invitations of the last day were sent, the
	// first included, at most maxInvitations.
	Invitations []time.Time `json:"invitations,omitempty"`
}

// maxInvitations is how many invitations an account is sent in a day:
// enough for a typo'd address fixed or a lost mail, not an inbox flood.
const maxInvitations = 5

// emailKey is the form of an e-mail address that accounts are found and
// throttled by: the stored form, or for a string that is no address
// (never stored) its trimmed lower case.
func emailKey(email string) string {
	if e, err := directory.NormalizeEmail(email); err == nil {
		return e
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// NormalizeEmail checks an admin's e-mail address and returns its stored
// form, by the rule app users' addresses follow (directory.NormalizeEmail).
func NormalizeEmail(email string) (string, error) {
	e, err := directory.NormalizeEmail(email)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrInvalid, email)
	}
	return e, nil
}

// CreateAdmin creates an admin account. The e-mail must be free.
func (s *Store) CreateAdmin(ctx context.Context, email, password string, operator bool) (Admin, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Admin{}, err
	}
	hash, err := hashChosen(ctx, password)
	if err != nil {
		return Admin{}, err
	}
	a := Admin{ID: directory.NewID("a_"), Email: email, PasswordHash: hash, Created: s.now().UTC(), Operator: operator}
	err = s.update(ctx, func(tx kv.Tx) error { return insertAdmin(tx, a) })
	return a, err
}

// insertAdmin stores a new account and its e-mail's index entry; the
// e-mail must be free.
func insertAdmin(tx kv.Tx, a Admin) error {
	if _, err := get(tx, tAdminEmail, a.Email); err == nil {
		return fmt.Errorf("%w: an admin account with e-mail %s exists", ErrConflict, a.Email)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := putJSON(tx, tAdmins, a.ID, a); err != nil {
		return err
	}
	return tx.Put(tAdminEmail, a.Email, []byte(a.ID))
}

// InviteAdmin creates a non-operator admin account for email with a fresh
// temporary password and gives it role on site, in one transaction:
// either both are made or neither. It returns the account and the
// temporary password (for the invitation e-mail; stored only hashed). The
// e-mail must be free (ErrConflict otherwise).
func (s *Store) InviteAdmin(ctx context.Context, email string, site directory.SiteID, role Role) (Admin, string, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Admin{}, "", err
	}
	if !role.Valid() {
		return Admin{}, "", fmt.Errorf("%w: role %q (want owner, admin, installer or viewer)", ErrInvalid, role)
	}
	temp := NewTempPassword()
	hash, err := hashNew(ctx, temp)
	if err != nil {
		return Admin{}, "", err
	}
	now := s.now().UTC()
	a := Admin{ID: directory.NewID("a_"), Email: email, PasswordHash: hash, Created: now, TemporaryPassword: true, TemporarySince: now,
		InvitedTo: site, Invitations: []time.Time{now}}
	err = s.update(ctx, func(tx kv.Tx) error {
		if err := insertAdmin(tx, a); err != nil {
			return err
		}
		return setRole(tx, site, a.ID, role)
	})
	if err != nil {
		return Admin{}, "", err
	}
	return a, temp, nil
}

// InvitationExpired reports whether a signs in with an invitation's
// temporary password that is past InvitationTTL at now.
func (a Admin) InvitationExpired(now time.Time) bool {
	return a.TemporaryPassword && now.Sub(a.TemporarySince) > InvitationTTL
}

// SetAdminTempPassword gives an invited admin a fresh temporary password
// (an invitation sent again, by site) and returns it; the earlier one
// stops working and the sessions signed in with it end. It refuses
// ErrConflict once the admin has chosen a password, ErrNotInviter when
// site is not the one that invited the account (another site's owner
// would void the invitation the invitee holds), and a *ThrottledError
// after maxInvitations in a day.
func (s *Store) SetAdminTempPassword(ctx context.Context, id string, site directory.SiteID) (string, error) {
	temp := NewTempPassword()
	hash, err := hashNew(ctx, temp)
	if err != nil {
		return "", err
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		var a Admin
		if err := getJSON(tx, tAdmins, id, &a); err != nil {
			return err
		}
		if !a.TemporaryPassword {
			return fmt.Errorf("%w: %s has already chosen a password", ErrConflict, a.Email)
		}
		if a.InvitedTo != site {
			return ErrNotInviter
		}
		now := s.now().UTC()
		a.Invitations = slices.DeleteFunc(a.Invitations, func(t time.Time) bool { return now.Sub(t) >= 24*time.Hour })
		if len(a.Invitations) >= maxInvitations {
			return &ThrottledError{RetryAfter: a.Invitations[0].Add(24 * time.Hour).Sub(now)}
		}
		a.PasswordHash, a.TemporarySince = hash, now
		a.Invitations = append(a.Invitations, now)
		if err := putJSON(tx, tAdmins, id, a); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionAdmin, id, "")
	})
	return temp, err
}

// Admin returns an admin account by ID.
func (s *Store) Admin(ctx context.Context, id string) (Admin, error) {
	var a Admin
	err := s.view(ctx, func(tx kv.Tx) error { return getJSON(tx, tAdmins, id, &a) })
	return a, err
}

// AdminByEmail returns an admin account by e-mail.
func (s *Store) AdminByEmail(ctx context.Context, email string) (Admin, error) {
	var a Admin
	err := s.view(ctx, func(tx kv.Tx) error {
		id, err := get(tx, tAdminEmail, emailKey(email))
		if err != nil {
			return err
		}
		return getJSON(tx, tAdmins, string(id), &a)
	})
	return a, err
}

// LoginAdmin checks an admin's e-mail and password under the per-account
// throttle. Unknown accounts take the same time and answer the same.
// An invitation's temporary password older than InvitationTTL is refused
// (ErrInvitationExpired). The same check, and throttle, serves a password
// change's current password.
func (s *Store) LoginAdmin(ctx context.Context, email, password string) (Admin, error) {
	var a Admin
	err := s.checkPassword(ctx, "admin/"+emailKey(email), func() bool {
		var err error
		a, err = s.AdminByEmail(ctx, email)
		hash := a.PasswordHash
		if err != nil {
			hash = dummyHash
		}
		return VerifyPassword(hash, password) && err == nil
	})
	if err != nil {
		return Admin{}, err
	}
	if a.InvitationExpired(s.now()) {
		return Admin{}, ErrInvitationExpired
	}
	return a, nil
}

// SetAdminPassword replaces an admin's password and ends their other
// sessions (keep: the token of the session that changed it, or "") and
// its reset links. A temporary password (an invitation's) is replaced by one the admin chose:
// the account and the keep session may do everything their roles allow.
func (s *Store) SetAdminPassword(ctx context.Context, id, password, keep string) error {
	hash, err := hashChosen(ctx, password)
	if err != nil {
		return err
	}
	keepKey := sessionKey(keep)
	return s.update(ctx, func(tx kv.Tx) error {
		if err := putChosenAdminPassword(tx, id, hash); err != nil {
			return err
		}
		if err := s.dropResetsOf(tx, ResetAdmin, id); err != nil {
			return err
		}
		if err := clearMustChange(tx, keepKey); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionAdmin, id, keepKey)
	})
}

// putChosenAdminPassword makes hash the admin's password, one they chose:
// an invitation's temporary password is gone with it.
func putChosenAdminPassword(tx kv.Tx, id, hash string) error {
	var a Admin
	if err := getJSON(tx, tAdmins, id, &a); err != nil {
		return err
	}
	a.PasswordHash, a.TemporaryPassword, a.TemporarySince = hash, false, time.Time{}
	return putJSON(tx, tAdmins, id, a)
}

// SetRole gives an admin a role on a site; the empty role removes it.
func (s *Store) SetRole(ctx context.Context, site directory.SiteID, admin string, r Role) error {
	return s.update(ctx, func(tx kv.Tx) error { return setRole(tx, site, admin, r) })
}

func setRole(tx kv.Tx, site directory.SiteID, admin string, r Role) error {
	if r == "" {
		_ = tx.Delete(tRoles, string(site)+"/"+admin)
		return tx.Delete(tAdminRoles, admin+"/"+string(site))
	}
	if !r.Valid() {
		return fmt.Errorf("%w: role %q (want owner, admin, installer or viewer)", ErrInvalid, r)
	}
	if err := tx.Put(tRoles, string(site)+"/"+admin, []byte(r)); err != nil {
		return err
	}
	return tx.Put(tAdminRoles, admin+"/"+string(site), []byte(r))
}

// TransferOwnership makes to the owner of site; from (the current owner)
// becomes an admin of it.
func (s *Store) TransferOwnership(ctx context.Context, site directory.SiteID, from, to string) error {
	if from == to {
		return fmt.Errorf("%w: that account owns the site already", ErrConflict)
	}
	return s.update(ctx, func(tx kv.Tx) error {
		r, err := get(tx, tRoles, string(site)+"/"+from)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if Role(r) != RoleOwner {
			return fmt.Errorf("%w: only the site's owner can transfer it", ErrInvalid)
		}
		if err := setRole(tx, site, to, RoleOwner); err != nil {
			return err
		}
		return setRole(tx, site, from, RoleAdmin)
	})
}

// Admins returns every admin account, operators' too.
func (s *Store) Admins(ctx context.Context) ([]Admin, error) {
	var out []Admin
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tAdmins, "", func(_ string, a Admin) error {
			out = append(out, a)
			return nil
		})
	})
	return out, err
}

// DeleteAdmin deletes an admin account in one transaction: its roles on
// every site, its sessions, its reset links, its e-mail and the account,
// and returns the roles it had. An operator's account is not deleted (the
// deployment's own, made by `foyer admin create-owner`), nor the owner of
// a site, which must first transfer it: ErrConflict for either.
func (s *Store) DeleteAdmin(ctx context.Context, id string) (map[directory.SiteID]Role, error) {
	var roles map[directory.SiteID]Role
	err := s.update(ctx, func(tx kv.Tx) error {
		var a Admin
		if err := getJSON(tx, tAdmins, id, &a); err != nil {
			return err
		}
		if a.Operator {
			return fmt.Errorf("%w: an operator's account is not deleted", ErrConflict)
		}
		var err error
		if roles, err = rolesOf(tx, id); err != nil {
			return err
		}
		for site, r := range roles {
			if r == RoleOwner {
				return fmt.Errorf("%w: the account owns site %s; transfer it first", ErrConflict, site)
			}
		}
		for site := range roles {
			if err := setRole(tx, site, id, ""); err != nil {
				return err
			}
		}
		if err := endSessionsOf(tx, SessionAdmin, id, ""); err != nil {
			return err
		}
		if err := s.dropResetsOf(tx, ResetAdmin, id); err != nil {
			return err
		}
		if err := tx.Delete(tAdminEmail, emailKey(a.Email)); err != nil {
			return err
		}
		return tx.Delete(tAdmins, id)
	})
	if err != nil {
		return nil, err
	}
	return roles, nil
}

// AllRoles returns every admin's direct roles by site, by admin ID.
func (s *Store) AllRoles(ctx context.Context) (map[string]map[directory.SiteID]Role, error) {
	all := make(map[string]map[directory.SiteID]Role)
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Scan(tAdminRoles, "", func(k string, v []byte) error {
			admin, site, _ := strings.Cut(k, "/")
			if all[admin] == nil {
				all[admin] = make(map[directory.SiteID]Role)
			}
			all[admin][directory.SiteID(site)] = Role(v)
			return nil
		})
	})
	return all, err
}

// RolesOf returns an admin's direct roles by site.
func (s *Store) RolesOf(ctx context.Context, admin string) (map[directory.SiteID]Role, error) {
	var roles map[directory.SiteID]Role
	err := s.view(ctx, func(tx kv.Tx) (err error) {
		roles, err = rolesOf(tx, admin)
		return err
	})
	return roles, err
}

// rolesOf reads an admin's direct roles by site in tx.
func rolesOf(tx kv.Tx, admin string) (map[directory.SiteID]Role, error) {
	roles := make(map[directory.SiteID]Role)
	err := tx.Scan(tAdminRoles, admin+"/", func(k string, v []byte) error {
		roles[directory.SiteID(strings.TrimPrefix(k, admin+"/"))] = Role(v)
		return nil
	})
	return roles, err
}

// SiteRoles returns the admins with a direct role on site.
func (s *Store) SiteRoles(ctx context.Context, site directory.SiteID) (map[string]Role, error) {
	roles := make(map[string]Role)
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Scan(tRoles, string(site)+"/", func(k string, v []byte) error {
			roles[strings.TrimPrefix(k, string(site)+"/")] = Role(v)
			return nil
		})
	})
	return roles, err
}
