package media

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Limits on what a client may send, checked before Pion parses anything.
const (
	// maxSDPSize bounds a session description: a door station's or
	// browser's offer with audio and video is 3–8 KiB.
	maxSDPSize = 64 << 10
	// maxMediaSections bounds m-lines: a call needs two per peer.
	maxMediaSections = 16
	// maxCandidateSize bounds one candidate line: real ones are ~150 bytes.
	maxCandidateSize = 1024
	// maxMidSize bounds sdpMid, a short token ("0", "audio").
	maxMidSize = 64
	// maxUfragSize bounds usernameFragment (RFC 8839 allows 256 chars).
	maxUfragSize = 256
	// maxQueuedCandidates bounds candidates held before the remote
	// description arrives; a browser sends a handful per interface.
	maxQueuedCandidates = 64
	// maxDevices bounds the devices of one call: 6 app users with a few
	// devices each, plus monitors.
	maxDevices = 64
)

// Errors returned by Session methods. Signalling maps ErrBadSDP and
// ErrBadCandidate to bad_request, ErrUnknownPeer to not_found, and
// ErrUnexpectedSDP to a protocol error; the session goes on after each.
var (
	ErrBadSDP        = errors.New("media: invalid session description")
	ErrBadCandidate  = errors.New("media: invalid ICE candidate")
	ErrUnexpectedSDP = errors.New("media: session description not expected now")
	ErrUnknownPeer   = errors.New("media: not a party of this call's media")
	ErrClosed        = errors.New("media: session closed")
	ErrTooManyPeers  = errors.New("media: too many devices in one call")
	ErrCallTaken     = errors.New("media: another device is connected")
)

// validateSDP checks a description from a client: type, size, and that it
// parses as SDP with a bounded number of media sections.
func validateSDP(desc webrtc.SessionDescription) error {
	if desc.Type != webrtc.SDPTypeOffer && desc.Type != webrtc.SDPTypeAnswer {
		return fmt.Errorf("%w: type must be offer or answer, not %q", ErrBadSDP, desc.Type.String())
	}
	if len(desc.SDP) == 0 {
		return fmt.Errorf("%w: empty sdp", ErrBadSDP)
	}
	if len(desc.SDP) > maxSDPSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadSDP, len(desc.SDP), maxSDPSize)
	}
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(desc.SDP); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if len(parsed.MediaDescriptions) == 0 {
		return fmt.Errorf("%w: no media sections", ErrBadSDP)
	}
	if len(parsed.MediaDescriptions) > maxMediaSections {
		return fmt.Errorf("%w: %d media sections, at most %d", ErrBadSDP, len(parsed.MediaDescriptions), maxMediaSections)
	}
	if desc.Type == webrtc.SDPTypeOffer && offersPassive(&parsed) {
		// The server answers as the DTLS server (Config.settingEngine):
		// both sides passive, DTLS would never start.
		return fmt.Errorf("%w: an offer's a=setup must be actpass (RFC 8842), not passive", ErrBadSDP)
	}
	return nil
}

// offersPassive reports whether an offer asks to be the DTLS server.
func offersPassive(s *sdp.SessionDescription) bool {
	if v, ok := s.Attribute("setup"); ok && v == "passive" {
		return true
	}
	for _, m := range s.MediaDescriptions {
		if v, ok := m.Attribute("setup"); ok && v == "passive" {
			return true
		}
	}
	return false
}

// validateCandidate checks a trickled candidate; an empty candidate string
// (end of candidates) is valid.
func validateCandidate(c webrtc.ICECandidateInit) error {
	if len(c.Candidate) > maxCandidateSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadCandidate, len(c.Candidate), maxCandidateSize)
	}
	if c.SDPMid != nil && len(*c.SDPMid) > maxMidSize {
		return fmt.Errorf("%w: sdpMid too long", ErrBadCandidate)
	}
	if c.UsernameFragment != nil && len(*c.UsernameFragment) > maxUfragSize {
		return fmt.Errorf("%w: usernameFragment too long", ErrBadCandidate)
	}
	if c.Candidate == "" {
		return nil
	}
	value, ok := strings.CutPrefix(c.Candidate, "candidate:")
	if !ok {
		return fmt.Errorf("%w: must start with \"candidate:\"", ErrBadCandidate)
	}
	_, err := ice.UnmarshalCandidate(value)
	if errors.Is(err, ice.ErrUnknownCandidateTyp) || errors.Is(err, ice.ErrDetermineNetworkType) {
		return nil // well-formed but unusable here; Pion discards it
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}
