// Package loopback is what the tests and the load tool need to run WebRTC
// peers on this machine: a network policy under which nothing leaves
// loopback, and the plumbing of a party that trickles its candidates and
// answers with a microphone.
package loopback

import (
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// SettingEngine gathers UDP4 candidates on lo only, loopback candidates
// included, accepts loopback addresses only (local and remote), and
// neither multicasts mDNS nor asks a STUN server.
func SettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return se
}

// API is a peer's WebRTC stack on SettingEngine, with Pion's default
// codecs and the interceptors a browser runs (NACK, RTCP reports).
func API() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(SettingEngine()), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg)), nil
}
