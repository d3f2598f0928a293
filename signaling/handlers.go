package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// dispatch decodes one frame from c and hands it to its handler. Every
// failure becomes one error reply; the connection stays open.
func (h *Hub) dispatch(c *Conn, frame []byte) {
	msg, err := DecodeInbound(frame)
	if err != nil {
		h.metrics.messagesIn.WithLabelValues("invalid").Inc()
		c.replyError(nil, "", protoErr(CodeBadRequest, "%s", err.Error()))
		return
	}
	received := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	switch msg.Type {
	case TypeCall:
		err = h.handleCall(ctx, c, msg)
		if err == nil {
			h.metrics.ringSeconds.Observe(time.Since(received).Seconds())
		}
	case TypeAnswer:
		err = h.handleAnswer(ctx, c, msg, received)
	case TypeDecline:
		err = h.handleDecline(c, msg)
	case TypeHangup:
		err = h.handleHangup(c, msg)
	case TypeOpenDoor:
		err = h.handleOpenDoor(c, msg)
	case TypePin:
		err = h.handlePin(c, msg)
	case TypeSDP, TypeCandidate:
		err = h.handleMedia(c, msg)
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
		pe := toProto(err)
		if pe.Code == CodeInternal || pe.Code == CodeServiceUnavailable {
			c.log.Warn("request failed", "type", msg.Type, "err", err)
		}
		c.replyError(msg.Ref, msg.CallID, pe)
	}
}

// handleCall places a call from a door station to a number of its sites.
func (h *Hub) handleCall(ctx context.Context, c *Conn, msg Inbound) error {
	if c.device.Kind != directory.KindDoorStation {
		return errNotDoor
	}
	number := directory.Number(msg.To)
	if !validNumber(number) {
		return protoErr(CodeBadRequest, `"to" must be a call ID of 1 to 6 digits`)
	}
	site, devices, err := h.lookup(ctx, c, msg.SiteID, number)
	if err != nil {
		return err
	}
	call := &Call{
		id:      h.newCallID(),
		hub:     h,
		door:    c.device,
		site:    site,
		number:  number,
		created: h.clock.Now(),
		legs:    make(map[directory.DeviceID]*leg, len(devices)),
	}
	if err := h.register(call); err != nil {
		return err
	}
	h.metrics.fanout.Observe(float64(call.start(devices, msg.Ref)))
	return nil
}

// lookup finds the site among the door station's sites that has number, and
// the devices a call to it rings. "No such ID" and "not permitted" are the
// same not_found.
func (h *Hub) lookup(ctx context.Context, c *Conn, only directory.SiteID, number directory.Number) (directory.Site, []directory.Device, error) {
	for _, s := range c.sites {
		if only != "" && s != only {
			continue
		}
		devices, err := h.store.Ringable(ctx, s, number)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return directory.Site{}, nil, err
		}
		site, err := h.store.Site(ctx, s)
		return site, devices, err
	}
	return directory.Site{}, nil, errNotFound
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

// handleAnswer lets a rung device take a call.
func (h *Hub) handleAnswer(ctx context.Context, c *Conn, msg Inbound, received time.Time) error {
	call, err := h.callFor(c, msg)
	if err != nil {
		return err
	}
	won, err := call.answer(c.device, h.party(ctx, call, c.device), msg.Ref)
	if won {
		h.metrics.cancelSeconds.Observe(time.Since(received).Seconds())
	}
	return err
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

func (h *Hub) handleDecline(c *Conn, msg Inbound) error {
	scope := msg.Scope
	if scope == "" {
		scope = ScopeDevice
	}
	if scope != ScopeDevice && scope != ScopeEveryone {
		return protoErr(CodeBadRequest, `"scope" must be "device" or "everyone"`)
	}
	call, err := h.callFor(c, msg)
	if err != nil {
		return err
	}
	return call.decline(c.device, scope)
}

func (h *Hub) handleHangup(c *Conn, msg Inbound) error {
	if msg.CallID == "" {
		return errMissingCall
	}
	h.mu.Lock()
	call := h.calls[msg.CallID]
	h.mu.Unlock()
	if call == nil {
		return errNoSuchCall
	}
	return call.hangup(c.device)
}

func (h *Hub) handleOpenDoor(c *Conn, msg Inbound) error {
	call, err := h.callFor(c, msg)
	if err != nil {
		return err
	}
	relay := int(msg.Relay)
	if relay == 0 {
		relay = 1
	}
	return call.openDoor(c.device, relay, msg.Ref)
}

// handlePin checks a keypad code. Access codes come with the admin API; until
// a site has codes, every code is wrong.
func (h *Hub) handlePin(c *Conn, msg Inbound) error {
	if c.device.Kind != directory.KindDoorStation {
		return errNotDoor
	}
	if msg.Code == "" {
		return protoErr(CodeBadRequest, `missing "code"`)
	}
	return protoErr(CodeNotFound, "wrong code")
}

// handleMedia answers sdp and candidate messages while no media server is
// configured on this node.
func (h *Hub) handleMedia(c *Conn, msg Inbound) error {
	if _, err := h.callFor(c, msg); err != nil {
		return err
	}
	return protoErr(CodeServiceUnavailable, "media is not enabled on this server")
}

// callFor finds the call a device's message is about; devices act only on
// calls they were rung for (checked again by the call itself).
func (h *Hub) callFor(c *Conn, msg Inbound) (*Call, error) {
	if msg.CallID == "" {
		return nil, errMissingCall
	}
	if c.device.Kind == directory.KindDoorStation && msg.Type != TypeSDP && msg.Type != TypeCandidate {
		return nil, errDoorOnly
	}
	h.mu.Lock()
	call := h.calls[msg.CallID]
	h.mu.Unlock()
	if call == nil {
		return nil, errNoSuchCall
	}
	return call, nil
}
