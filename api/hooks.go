package api

import (
	"context"
	"errors"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/signaling"
)

// HookSignaling connects a signalling hub's configuration to the account
// side: keypad codes are checked against the site's access codes, and
// calls, door openings and keypad attempts go to the site's logs through
// the journal (never the code typed).
func HookSignaling(c *signaling.Config, acc *accounts.Store, j *accounts.Journal) {
	c.Keypad = func(ctx context.Context, door directory.Device, code string) (signaling.KeypadResult, error) {
		return keypad(ctx, acc, j, door, code)
	}
	c.OnCallEnded = func(r signaling.CallRecord) {
		e := accounts.Event{
			Site: r.Site, Kind: accounts.EventCall, Time: r.Started, Door: r.Door, CallID: string(r.CallID), Number: r.Number,
			Devices: r.Rung, People: r.People, Declined: r.Declined, Outcome: string(r.Reason), DoorOpened: r.DoorOpened,
		}
		if r.Answered.ID != "" {
			e.Answered, e.User = r.Answered.ID, r.Answered.User
			e.AnsweredAfterMs, e.DurationMs = r.AnsweredAfter.Milliseconds(), r.Talk.Milliseconds()
		}
		j.Record(e)
	}
	c.OnDoorOpened = func(r signaling.DoorRecord) {
		j.Record(accounts.Event{
			Site: r.Site, Kind: accounts.EventDoor, Time: r.At, Door: r.Door, CallID: string(r.CallID),
			Actor: string(r.By.ID), User: r.By.User, Outcome: "call",
		})
	}
}

func keypad(ctx context.Context, acc *accounts.Store, j *accounts.Journal, door directory.Device, code string) (signaling.KeypadResult, error) {
	c, err := acc.CheckPin(ctx, door, code)
	var te *accounts.ThrottledError
	ev := accounts.Event{Site: door.Site, Kind: accounts.EventAccess, Door: door.ID}
	switch {
	case errors.As(err, &te):
		ev.Outcome = "locked"
		j.Record(ev)
		return signaling.KeypadResult{LockedFor: te.RetryAfter}, nil
	case errors.Is(err, accounts.ErrBadCredentials):
		ev.Outcome = "denied"
		j.Record(ev)
		return signaling.KeypadResult{}, nil
	case err != nil:
		return signaling.KeypadResult{}, err
	}
	ev.Outcome, ev.User, ev.Details = "granted", c.User, "code "+c.ID
	j.Record(ev)
	j.Record(accounts.Event{Site: door.Site, Kind: accounts.EventDoor, Door: door.ID, User: c.User, Outcome: "access_code", Details: "code " + c.ID})
	return signaling.KeypadResult{Open: true}, nil
}
