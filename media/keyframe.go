package media

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

const (
	// minPLIInterval spaces keyframe requests to the door station: each
	// keyframe costs it several times a normal frame's bits.
	minPLIInterval = 500 * time.Millisecond
	// keyframeWait is how long an unanswered PLI is trusted to bring a
	// keyframe that every viewer joining meanwhile will get too.
	keyframeWait = time.Second
)

// keyframer decides when to send the door station a PLI (RFC 4585 §6.3.1).
// Requests come from new viewers and from devices' own PLI and FIR. One
// PLI serves every request until its keyframe arrives; otherwise requests
// are spaced by minPLIInterval, a late one being sent at the end of the
// interval rather than dropped.
type keyframer struct {
	// Immutable after construction.
	send func() bool // sends a PLI; false when there is no video to ask for
	now  func() time.Time

	awaiting atomic.Bool // a PLI is out and no keyframe seen since; read by the forwarder

	mu     sync.Mutex
	last   time.Time   // guarded by mu; when the last PLI was sent
	timer  *time.Timer // guarded by mu; a deferred PLI, or nil
	closed bool        // guarded by mu
}

func newKeyframer(send func() bool) *keyframer {
	return &keyframer{send: send, now: time.Now}
}

// request asks for a keyframe.
func (k *keyframer) request() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.timer != nil {
		return
	}
	since := k.now().Sub(k.last)
	switch {
	case k.awaiting.Load() && since < keyframeWait:
		// The keyframe already asked for will reach this viewer too.
	case since >= minPLIInterval:
		k.sendLocked()
	default:
		k.timer = time.AfterFunc(minPLIInterval-since, k.fire)
	}
}

func (k *keyframer) fire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.timer = nil
	if !k.closed {
		k.sendLocked()
	}
}

// sendLocked sends the PLI. The write is a non-blocking UDP send.
func (k *keyframer) sendLocked() {
	if k.send() {
		k.last = k.now()
		k.awaiting.Store(true)
	}
}

// seen records a keyframe from the door station.
func (k *keyframer) seen() {
	k.awaiting.Store(false)
}

// close stops a deferred PLI.
func (k *keyframer) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
}

// isKeyframe reports whether an RTP payload starts a keyframe of the codec.
func isKeyframe(mime string, payload []byte) bool {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return vp8Keyframe(payload)
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return h264Keyframe(payload)
	}
	return false
}

// vp8Keyframe reads the payload descriptor of RFC 7741 §4.2 and the P bit
// of the VP8 frame header in the first packet of a frame.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 { // S=1, PID=0: a frame's start
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}

// h264Keyframe looks for an IDR slice or a sequence parameter set
// (RFC 6184 §5.4): single NAL, STAP-A, or the first fragment of a FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	key := func(t byte) bool { return t == 5 || t == 7 }
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A: 16-bit sizes, then NAL units
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if key(p[i+2] & 0x1f) {
				return true
			}
			i += 2 + size
		}
		return false
	case 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && key(p[1]&0x1f)
	default:
		return key(t)
	}
}
