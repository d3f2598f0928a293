package media

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// videoFeedback is what every video codec offers: NACK retransmission
// (RFC 4585), picture loss indication and full intra request (RFC 5104),
// so that a device can ask the door station for a keyframe through us.
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBNACK},
	{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
}

// h264Fmtp lists the H.264 variants door stations and browsers use:
// constrained baseline and baseline, with and without interleaved
// packetization (RFC 6184), and main profile.
var h264Fmtp = []string{
	"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
	"level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
	"level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
	"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
}

// supportedCodecs is the codec table of the Engine: VP8 and H.264 video,
// Opus and G.711 (PCMU, PCMA) audio. Door stations often send only G.711;
// every device is offered the door station's codec, whichever it is.
func supportedCodecs() []webrtc.RTPCodecParameters {
	codecs := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96},
	}
	for i, f := range h264Fmtp {
		codecs = append(codecs, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: f, RTCPFeedback: videoFeedback},
			PayloadType:        webrtc.PayloadType(102 + 2*i),
		})
	}
	return append(codecs,
		webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111},
		webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8},
	)
}

// registerCodecs fills m with supportedCodecs.
func registerCodecs(m *webrtc.MediaEngine) error {
	for _, c := range supportedCodecs() {
		kind := webrtc.RTPCodecTypeAudio
		if strings.HasPrefix(c.MimeType, "video/") {
			kind = webrtc.RTPCodecTypeVideo
		}
		if err := m.RegisterCodec(c, kind); err != nil {
			return fmt.Errorf("media: register %s: %w", c.MimeType, err)
		}
	}
	return nil
}

// forDevices turns the codec negotiated with the door station into the
// codec preference of a device's transceiver: same codec and format
// parameters, but our payload type (zero: the media engine picks it) and
// our full feedback set, whatever the door station accepted.
func forDevices(c webrtc.RTPCodecParameters) webrtc.RTPCodecParameters {
	c.PayloadType = 0
	c.RTCPFeedback = nil
	if strings.HasPrefix(c.MimeType, "video/") {
		c.RTCPFeedback = videoFeedback
	}
	return c
}
