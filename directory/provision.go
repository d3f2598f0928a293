package directory

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provision applies a parsed provisioning file to store in ONE Apply batch
// and returns a fresh token for every device the file names (device name →
// token).
//
// It is idempotent for the directory: sites are found by name, users by
// e-mail and devices by kind, scope and name, so applying the same file
// again keeps every ID and changes no data. Tokens are the exception: they
// are stored hashed and cannot be printed again, so every run issues new
// ones and the previous tokens of the file's devices stop working.
//
// The file's limits are checked against what the store already holds
// (members added through the API count too); a breach is a *ProvisionError
// naming the line, and nothing is written.
func Provision(ctx context.Context, store Store, f *ProvisionFile) (map[string]string, error) {
	pl := &planner{ctx: ctx, store: store, users: make(map[string]*plannedUser), tokens: make(map[string]string)}
	for _, s := range f.Sites {
		if err := pl.site(s); err != nil {
			return nil, err
		}
	}
	ops := pl.ops()
	if err := store.Apply(ctx, ops...); err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	return pl.tokens, nil
}

// plannedUser is an app user of the file: found by e-mail or new.
type plannedUser struct {
	user     User
	existing bool
	// sites maps each site of the user's memberships in the store to the membership.
	sites map[SiteID]Membership
}

// planner looks up what the store holds and collects the ops, grouped so
// that the batch applies in an order every rule accepts.
type planner struct {
	ctx   context.Context
	store Store
	users map[string]*plannedUser // by e-mail

	siteOps, entryOps, userOps, leaveOps, memberOps, deviceOps, tokenOps []Op
	tokens                                                               map[string]string
}

func (pl *planner) ops() []Op {
	var ops []Op
	for _, group := range [][]Op{pl.siteOps, pl.entryOps, pl.userOps, pl.leaveOps, pl.memberOps, pl.deviceOps, pl.tokenOps} {
		ops = append(ops, group...)
	}
	return ops
}

// user finds or creates the user with an e-mail, once per run.
func (pl *planner) user(email string) (*plannedUser, error) {
	if u, ok := pl.users[email]; ok {
		return u, nil
	}
	u := &plannedUser{sites: make(map[SiteID]Membership)}
	found, err := pl.store.UserByEmail(pl.ctx, email)
	switch {
	case err == nil:
		u.user, u.existing = found, true
		ms, err := pl.store.Memberships(pl.ctx, found.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			u.sites[m.Site] = m
		}
	case errors.Is(err, ErrNotFound):
		u.user = User{ID: UserID(NewID("u_")), Email: email}
		pl.userOps = append(pl.userOps, PutUser{User: u.user})
	default:
		return nil, err
	}
	pl.users[email] = u
	return u, nil
}

func (pl *planner) site(ps ProvisionSite) error {
	site, existing, err := pl.findSite(ps)
	if err != nil {
		return err
	}
	entries := make(map[Number]Entry)
	members := 0
	if existing {
		es, err := pl.store.Entries(pl.ctx, site.ID)
		if err != nil {
			return err
		}
		for _, e := range es {
			entries[e.Number] = e
		}
		if members, err = pl.store.CountMembers(pl.ctx, site.ID); err != nil {
			return err
		}
	}
	// Resolve the users first: who is in the file for this site.
	inFile := make(map[UserID]bool)
	for _, id := range ps.IDs {
		for _, pu := range id.AppUsers {
			u, err := pl.user(pu.Email)
			if err != nil {
				return err
			}
			inFile[u.user.ID] = true
		}
	}
	for _, id := range ps.IDs {
		want := Entry{Site: site.ID, Number: id.Number, Name: id.Name}
		if entries[id.Number] != want {
			pl.entryOps = append(pl.entryOps, PutEntry{Entry: want})
		}
		if err := pl.checkNumber(site, id, existing && entries[id.Number].Number != "", inFile); err != nil {
			return err
		}
		for _, pu := range id.AppUsers {
			if members, err = pl.member(site, id, pu, members, ps); err != nil {
				return err
			}
		}
		for _, m := range id.Monitors {
			if err := pl.device(Device{Kind: KindMonitor, Name: m.Name, Site: site.ID, Number: id.Number}, existing); err != nil {
				return err
			}
		}
	}
	for _, d := range ps.DoorStations {
		if err := pl.device(Device{Kind: KindDoorStation, Name: d.Name, Site: site.ID}, existing); err != nil {
			return err
		}
	}
	return nil
}

// findSite finds the file's site by name, or plans a new one, and plans
// its settings: the file's values over the site's own (or the defaults).
func (pl *planner) findSite(ps ProvisionSite) (Site, bool, error) {
	site, err := pl.store.SiteByName(pl.ctx, "", ps.Name)
	existing := err == nil
	switch {
	case errors.Is(err, ErrNotFound):
		site = Site{ID: SiteID(NewID("s_")), Name: ps.Name, Settings: DefaultSettings()}
	case err != nil:
		return site, false, err
	}
	want := site
	setIf(&want.Settings.RingTimeout, ps.RingTimeout)
	setIf(&want.Settings.CallTimeLimit, ps.CallTimeLimit)
	setIf(&want.Settings.DoorOpenDuration, ps.DoorOpen)
	if ps.Preview != nil {
		want.Settings.Preview = *ps.Preview
	}
	if ps.VisitorPasses != nil {
		want.Settings.VisitorPasses = *ps.VisitorPasses
	}
	if ps.RemoteOpen != nil {
		want.Settings.RemoteOpen = *ps.RemoteOpen
	}
	if !existing || want != site {
		pl.siteOps = append(pl.siteOps, PutSite{Site: want})
	}
	return want, existing, nil
}

// setIf sets *dst to *v when the file gave v.
func setIf(dst *time.Duration, v *time.Duration) {
	if v != nil {
		*dst = *v
	}
}
