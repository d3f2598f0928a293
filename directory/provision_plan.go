package directory

import (
	"errors"
	"fmt"
	"reflect"
)

// checkNumber checks the 6-per-call-ID limit against the members the store
// already has on the number and the file does not move or list.
func (pl *planner) checkNumber(site Site, id ProvisionID, entryExists bool, inFile map[UserID]bool) error {
	if !entryExists {
		return nil
	}
	ms, err := pl.store.Members(pl.ctx, site.ID, id.Number)
	if err != nil {
		return err
	}
	kept := 0
	for _, m := range ms {
		if !inFile[m.User] {
			kept++
		}
	}
	if kept+len(id.AppUsers) <= MaxUsersPerNumber {
		return nil
	}
	over := id.AppUsers[max(MaxUsersPerNumber-kept, 0)]
	return &ProvisionError{Line: over.Line, Err: ErrLimit, Msg: fmt.Sprintf(
		"call ID %q: a %s app user (%s), counting the %d app users the store already has on it; at most %d app users per call ID",
		string(id.Number), ordinal(MaxUsersPerNumber+1), over.Email, kept, MaxUsersPerNumber)}
}

// member plans the membership of one app user of the file and its devices;
// members is the site's count so far, returned updated.
func (pl *planner) member(site Site, id ProvisionID, pu ProvisionUser, members int, ps ProvisionSite) (int, error) {
	u := pl.users[pu.Email]
	want := Membership{
		Site: site.ID, User: u.user.ID, Number: id.Number, DisplayName: pu.DisplayName,
		Licence: pu.Licence, Status: pu.Status,
	}
	old, had := u.sites[site.ID]
	switch {
	case !had:
		if members++; members > MaxUsersPerSite {
			return members, &ProvisionError{Line: pu.Line, Err: ErrLimit, Msg: fmt.Sprintf(
				"site %q: app user %s is one too many, counting the app users the store already has in the site; at most %d app users per site",
				ps.Name, pu.Email, MaxUsersPerSite)}
		}
		pl.memberOps = append(pl.memberOps, PutMembership{Membership: want})
	case old != want:
		if old.Number != want.Number {
			// Leave the old number first, so the batch never holds 7 on one.
			pl.leaveOps = append(pl.leaveOps, DeleteMembership{Site: site.ID, User: u.user.ID})
		}
		pl.memberOps = append(pl.memberOps, PutMembership{Membership: want})
	}
	for _, d := range pu.Devices {
		if err := pl.device(Device{Kind: KindApp, Name: d.Name, User: u.user.ID}, u.existing); err != nil {
			return members, err
		}
	}
	return members, nil
}

// device plans a device of the file: found by kind, scope and name when its
// scope already exists, else new; and a fresh token either way.
func (pl *planner) device(d Device, scopeExists bool) error {
	found := false
	if scopeExists {
		old, err := pl.store.DeviceByName(pl.ctx, d.Kind, deviceScope(d), d.Name)
		switch {
		case err == nil:
			found, d.ID, d.CallSites = true, old.ID, old.CallSites
			if !reflect.DeepEqual(old, d) {
				pl.deviceOps = append(pl.deviceOps, PutDevice{Device: d})
			}
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	if !found {
		d.ID = DeviceID(NewID("d_"))
		pl.deviceOps = append(pl.deviceOps, PutDevice{Device: d})
	}
	token, hash := NewToken()
	pl.tokenOps = append(pl.tokenOps, SetDeviceToken{ID: d.ID, Token: hash})
	pl.tokens[d.Name] = token
	return nil
}
