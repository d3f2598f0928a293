package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// dispatch decodes one frame from c and hands it to its handler. Every
// failure becomes one error reply; the connection stays open.
func (h *Hub) dispatch(c *Conn, frame []byte) {
	if !c.msgs.Allow() {
		h.metrics.rateLimited.WithLabelValues("message").Inc()
		c.replyError(nil, "", errTooFast)
		return
	}
	msg, err := DecodeInbound(frame)
	if err != nil {
		h.metrics.messagesIn.WithLabelValues("invalid").Inc()
		c.replyError(nil, "", protoErr(CodeBadRequest, "%s", err.Error()))
		return
	}
	received := time.Now()
	ctx := newRequestContext(received.Add(h.cfg.RequestTimeout))
	defer ctx.stop()
	switch msg.Type {
	case TypeCall:
		err = h.handleCall(ctx, c, msg, received)
	case TypeAnswer, TypeDecline, TypeHangup, TypeOpenDoor, TypeSDP, TypeCandidate:
		err = h.routeCallMessage(ctx, c, msg, frame, received)
	case TypePin:
		err = h.handlePin(ctx, c, msg)
	case TypePing:
		c.reply(Pong{Type: TypePong, Ref: msg.Ref})
	case TypeHello:
		err = protoErr(CodeBadRequest, "already authenticated; hello is only the first message")
	default:
		h.metrics.messagesIn.WithLabelValues("unknown").Inc()
		c.replyError(msg.Ref, msg.CallID, protoErr(CodeUnknownType, "unknown message type %q", msg.Type))
		return
	}
	h.metrics.messagesIn.WithLabelValues(msg.Type).Inc()
	if err != nil {
		h.replyError(c.device, msg, err)
	}
}

// replyError sends the protocol error for err to device d, wherever it is connected.
func (h *Hub) replyError(d directory.Device, msg Inbound, err error) {
	pe := toProto(err)
	if pe.Code == CodeInternal || pe.Code == CodeServiceUnavailable {
		h.log.Warn("request failed", "device_id", d.ID, "type", msg.Type, "err", err)
	}
	h.router.Deliver(d.ID, encode(ErrorReply{Type: TypeError, Ref: msg.Ref, Code: pe.Code, Message: pe.Message, CallID: msg.CallID}))
}

// routeCallMessage runs a message about a call on the node that owns the
// call: here, or forwarded to the owner, which replies to the device itself.
func (h *Hub) routeCallMessage(ctx context.Context, c *Conn, msg Inbound, frame []byte, received time.Time) error {
	if msg.CallID == "" {
		return errMissingCall
	}
	if owner := ownerOf(msg.CallID); owner != "" && owner != h.cfg.NodeID {
		// Recorded first: the owner's ended, should this end the call, can
		// come back before Forward returns, and forgets it (noteRemoteFrame).
		c.actedOn(msg.CallID)
		return h.router.Forward(ctx, owner, msg.CallID, c.device, c.id, frame)
	}
	return h.handleCallMessage(ctx, c.device, c.id, msg, received)
}

// RemoteMessage implements NodeHandler: it runs a call message that another
// node forwarded to this node, the call's owner. Errors go back to the
// device through the router.
func (h *Hub) RemoteMessage(node string, from directory.Device, conn string, frame []byte) {
	msg, err := DecodeInbound(frame)
	if err != nil {
		return // the sending node decoded it already
	}
	received := time.Now()
	ctx := newRequestContext(received.Add(h.cfg.RequestTimeout))
	defer ctx.stop()
	if msg.Type == TypeCall {
		id := msg.CallID
		msg.CallID = "" // the forwarding node's choice, not the door station's: its errors name no call
		err = h.remoteCall(ctx, node, from, conn, msg, id, received)
	} else {
		err = h.handleCallMessage(ctx, from, conn, msg, received)
	}
	if err != nil {
		h.replyError(from, msg, err)
	}
}

// handleCallMessage handles a message about a call this node owns, from
// device d through its connection conn.
func (h *Hub) handleCallMessage(ctx context.Context, d directory.Device, conn string, msg Inbound, received time.Time) error {
	call, err := h.callFor(d, msg)
	if err != nil {
		return err
	}
	switch msg.Type {
	case TypeAnswer:
		var by Party // only an answer that can win needs the directory's name for it
		if !call.takenByOther(d) {
			by = h.party(ctx, call, d)
		}
		won, err := call.answer(d, conn, by, msg.Ref)
		h.router.Flush(ctx) // cancels for other nodes go out now
		if won {
			h.metrics.cancelSeconds.Observe(time.Since(received).Seconds())
		}
		return err
	case TypeDecline:
		return h.handleDecline(call, d, msg)
	case TypeHangup:
		return call.hangup(d)
	case TypeOpenDoor:
		relay := int(msg.Relay)
		if relay == 0 {
			relay = 1
		}
		return call.openDoor(d, conn, relay, msg.Ref)
	default: // sdp, candidate
		// An ICE restart is how a party that moved networks gets its media
		// back, and rejoins the call (heard).
		if !call.heard(d.ID, conn) {
			return errNoSuchCall // the same answer as for a call that never was
		}
		return h.handleMedia(call, d, msg)
	}
}

// handleCall places a call from a door station to a number of its sites.
func (h *Hub) handleCall(ctx context.Context, c *Conn, msg Inbound, received time.Time) error {
	if c.device.Kind != directory.KindDoorStation {
		return errNotDoor
	}
	if !c.calls.Allow() {
		h.metrics.rateLimited.WithLabelValues("call").Inc()
		return protoErr(CodeRateLimited, "too many calls from this door station; wait a few seconds")
	}
	number := directory.Number(msg.To)
	if !validNumber(number) {
		return protoErr(CodeBadRequest, `"to" must be a call ID of 1 to 6 digits`)
	}
	// A call of this door station's that another node owns may still be
	// going: one it rejoined through this connection, or one handed over
	// to this connection from the one it replaced, which it has forgotten
	// (it restarted, and reconnected here). Only the owner knows, so the
	// owner places the new call, as for a door station of its own: it
	// answers busy, or ends a forgotten call (as register's forgottenBy
	// does) and rings; the old call's cancel and the new call's ring then
	// reach every device in that order, from one node. The call's ID is
	// chosen here, one of the owner's. Should that node be gone (nothing
	// received the forward: errNoSuchCall), its calls went with it, and the
	// call is placed here; when Redis failed, that node may be there with
	// the call, and the door station retries.
	owner, forward := c.callOwner(h.cfg.NodeID)
	if forward {
		msg.CallID = newCallIDAt(owner)
		frame, err := json.Marshal(msg)
		if err == nil {
			err = h.router.Forward(ctx, owner, msg.CallID, c.device, c.id, frame)
		}
		switch {
		case err == nil:
			// Those of the owner's it forgot stay recorded until its
			// calling comes: should it refuse the call (not_found), they
			// are still to end.
			h.forget(ctx, c, c.takeHanded(func(o string) bool { return o != owner }))
			return nil // recorded as the door's when its calling comes
		case !errors.Is(err, errNoSuchCall):
			h.forget(ctx, c, c.takeHanded(anyOwner)) // the retry will not find them
			return errBackendDown
		}
		msg.CallID = ""
	}
	// The owner is gone (its calls went with it), or none: placed here.
	// Owners of calls handed over end them (queued ahead of the new call's
	// rings to those nodes).
	h.forget(ctx, c, c.takeHanded(anyOwner))
	return h.placeCall(ctx, c.device, c.id, c.sites, msg, received, h.newCallID())
}

// forget tells the owners of calls handed over to c that its door station
// forgot them (Router.Forgotten).
func (h *Hub) forget(ctx context.Context, c *Conn, handed []CallID) {
	for _, old := range handed {
		h.router.Forgotten(ctx, ownerOf(old), old, c.device.ID, c.id)
	}
}

// placeCall places call id from door station door, connected as conn
// (here, or on another node that forwarded its call: handleCall), to a
// number of sites.
func (h *Hub) placeCall(ctx context.Context, door directory.Device, conn string, sites []directory.SiteID, msg Inbound, received time.Time, id CallID) error {
	number := directory.Number(msg.To)
	site, devices, err := h.lookup(ctx, sites, msg.SiteID, number)
	if err != nil {
		return err
	}
	ids := make([]directory.DeviceID, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	if err := h.router.Locate(ctx, ids); err != nil {
		h.log.Warn("locating devices failed", "err", err)
		return errBackendDown
	}
	call := &Call{
		id:       id,
		hub:      h,
		door:     door,
		doorConn: conn,
		site:     site,
		number:   number,
		created:  h.clock.Now(),
		legs:     make(map[directory.DeviceID]*leg, len(devices)),
	}
	if h.cfg.Media != nil {
		call.media = h.cfg.Media.NewSession(string(id), string(door.ID), site.Settings.Preview, callEvents{router: h.router, call: id})
	}
	cur, err := h.register(call)
	if cur != nil && cur.forgottenBy(conn) {
		cur, err = h.register(call) // the call it forgot has ended
	}
	if cur != nil {
		err = protoErr(CodeBusy, "this door station already has call %s; hang it up first", cur.id)
	}
	if err != nil {
		h.closeMedia(call.media)
		return err
	}
	n := call.start(devices, msg.Ref, received)
	h.metrics.fanout.Observe(float64(n))
	h.router.Flush(ctx) // rings for other nodes go out now
	if n > 0 {
		h.metrics.ringSeconds.Observe(time.Since(received).Seconds())
	}
	return nil
}

// remoteCall places a call forwarded by node, where its door station is
// connected as conn: the door station has a call of this node's that may
// still be going, one it rejoined or forgot there, and so this node
// decides (handleCall). The forwarding node chose the call's ID, one of
// this node's. A node that drains hands the call back to be placed there,
// once it has no call of the door station's going (it ended one forgotten):
// the door station's node places it as its own, and settles what it
// recorded of this node's calls for the connection.
func (h *Hub) remoteCall(ctx context.Context, node string, door directory.Device, conn string, msg Inbound, id CallID, received time.Time) error {
	if door.Kind != directory.KindDoorStation || !validNumber(directory.Number(msg.To)) {
		return errNotDoor // the forwarding node checked both
	}
	if ownerOf(id) != h.cfg.NodeID {
		id = h.newCallID()
	}
	if c := h.router.Local(door.ID); c != nil {
		if c.id == conn {
			c.settled(node)
		}
		return h.placeCall(ctx, door, conn, deviceSites(door, nil), msg, received, id)
	}
	// The call's calling, and every frame after, go to the door station there.
	if err := h.router.Locate(ctx, []directory.DeviceID{door.ID}); err != nil {
		h.log.Warn("locating devices failed", "err", err)
		return errBackendDown
	}
	err := h.placeCall(ctx, door, conn, deviceSites(door, nil), msg, received, id)
	if at, ok := h.router.Where(door.ID); errors.Is(err, errDraining) && ok && at == conn {
		// Handed back only to the connection that sent it, which that
		// node holds: a call never goes back and forth.
		msg.CallID = newCallIDAt(node)
		if frame, merr := json.Marshal(msg); merr == nil && h.router.Forward(ctx, node, msg.CallID, door, conn, frame) == nil {
			return nil
		}
	}
	return err
}

// lookup finds the site among the door station's sites that has number, and
// the devices a call to it rings. "No such ID" and "not permitted" are the
// same not_found.
func (h *Hub) lookup(ctx context.Context, sites []directory.SiteID, only directory.SiteID, number directory.Number) (directory.Site, []directory.Device, error) {
	// Without site_id, a number several of the door's sites have goes to
	// the first (own site first) where somebody can ring; when nobody can
	// anywhere, to the first that has it (and ends unavailable).
	var first directory.SiteID
	var none []directory.Device
	for _, s := range sites {
		if only != "" && s != only {
			continue
		}
		devices, err := h.store.Ringable(ctx, s, number)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			h.log.Warn("directory look-up failed", "site_id", s, "err", err)
			return directory.Site{}, nil, errBackendDown
		}
		if len(devices) == 0 {
			if first == "" {
				first, none = s, devices
			}
			continue
		}
		return h.site(ctx, s, devices)
	}
	if first != "" {
		return h.site(ctx, first, none)
	}
	return directory.Site{}, nil, errNotFound
}

// site reads the call's site for lookup.
func (h *Hub) site(ctx context.Context, id directory.SiteID, devices []directory.Device) (directory.Site, []directory.Device, error) {
	site, err := h.store.Site(ctx, id)
	if err != nil {
		h.log.Warn("directory look-up failed", "site_id", id, "err", err)
		return directory.Site{}, nil, errBackendDown
	}
	return site, devices, nil
}

func validNumber(n directory.Number) bool {
	if len(n) < 1 || len(n) > 6 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// party describes an answering device: an app by its user's display name
// in the call's site, a monitor by its own name.
func (h *Hub) party(ctx context.Context, call *Call, d directory.Device) Party {
	p := Party{DeviceID: d.ID, Kind: d.Kind, Name: d.Name}
	if d.Kind != directory.KindApp {
		return p
	}
	members, err := h.store.Members(ctx, call.site.ID, call.number)
	if err != nil {
		return p
	}
	for _, m := range members {
		if m.User == d.User && m.DisplayName != "" {
			p.Name = m.DisplayName
		}
	}
	return p
}

func (h *Hub) handleDecline(call *Call, d directory.Device, msg Inbound) error {
	scope := msg.Scope
	if scope == "" {
		scope = ScopeDevice
	}
	if scope != ScopeDevice && scope != ScopeEveryone {
		return protoErr(CodeBadRequest, `"scope" must be "device" or "everyone"`)
	}
	return call.decline(d, scope)
}

// handlePin checks a code typed on a door station's keypad: unlock when it
// opens this door now, otherwise not_found, or rate_limited while the
// keypad is locked out after repeated wrong codes.
func (h *Hub) handlePin(ctx context.Context, c *Conn, msg Inbound) error {
	if c.device.Kind != directory.KindDoorStation {
		return errNotDoor
	}
	if msg.Code == "" {
		return protoErr(CodeBadRequest, `missing "code"`)
	}
	if h.cfg.Keypad == nil {
		h.metrics.keypadCodes.WithLabelValues(keypadWrong).Inc()
		return protoErr(CodeNotFound, "wrong code")
	}
	res, err := h.cfg.Keypad(ctx, c.device, string(msg.Code))
	switch {
	case err != nil:
		return err
	case res.LockedFor > 0:
		h.metrics.keypadCodes.WithLabelValues(keypadLocked).Inc()
		return protoErr(CodeRateLimited, "keypad locked after repeated wrong codes; try again in %d s", int(res.LockedFor.Seconds())+1)
	case !res.Open:
		h.metrics.keypadCodes.WithLabelValues(keypadWrong).Inc()
		return protoErr(CodeNotFound, "wrong code")
	}
	site, err := h.store.Site(ctx, c.device.Site)
	if err != nil {
		return err
	}
	c.reply(Unlock{Type: TypeUnlock, Relay: 1, DurationMS: site.Settings.DoorOpenDuration.Milliseconds()})
	h.metrics.doorOpenings.WithLabelValues(openedByKeypad).Inc()
	h.metrics.keypadCodes.WithLabelValues(keypadOpened).Inc()
	return nil
}

// callFor finds the call a device's message is about. Door stations act
// only on their own calls (hang up, media); other devices only on calls they
// were rung for (checked again by the call itself). A party to a call that
// has ended gets call_ended; anyone else not_found, as for a call that
// never was.
func (h *Hub) callFor(d directory.Device, msg Inbound) (*Call, error) {
	if d.Kind == directory.KindDoorStation && msg.Type != TypeHangup && msg.Type != TypeSDP && msg.Type != TypeCandidate {
		return nil, errDoorOnly
	}
	call := h.call(msg.CallID)
	if call == nil {
		if e, ok := h.lookupEnded(msg.CallID); ok && e.involves(d.ID) {
			return nil, errCallEnded
		}
		return nil, errNoSuchCall
	}
	if d.Kind == directory.KindDoorStation && call.door.ID != d.ID {
		return nil, errNoSuchCall
	}
	return call, nil
}
