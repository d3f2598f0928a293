package media

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Config is where the media server listens and what it announces. The zero
// value is usable: any ephemeral UDP port on every interface, the host's own
// addresses announced, no filters.
type Config struct {
	// UDPPortMin and UDPPortMax bound the ephemeral UDP ports of ICE host
	// candidates (a firewall opening). Zero for both: any port.
	UDPPortMin uint16 `yaml:"udp_port_min"`
	UDPPortMax uint16 `yaml:"udp_port_max"`
	// UDPMuxPort, when not zero, serves every session of the node on this
	// one UDP port (RFC 8445 allows sharing a port between agents).
	// It overrides UDPPortMin/Max.
	UDPMuxPort int `yaml:"udp_mux_port"`
	// UDPBatchWrite, when 2 or more (and UDPMuxPort is set), hands the
	// kernel up to that many outgoing packets in one sendmmsg(2) call
	// instead of one sendto(2) each; a packet waits at most
	// udpBatchInterval for its batch to fill. 0 or 1: one call per packet.
	UDPBatchWrite int `yaml:"udp_batch_write"`
	// PublicIPs are announced instead of the host addresses when the node
	// sits behind a 1:1 NAT (a cloud VM with an elastic IP).
	PublicIPs []string `yaml:"public_ips"`
	// Interfaces, when not empty, are the only network interfaces whose
	// addresses are gathered and announced, with a port per call and on
	// the UDP mux port alike (whose socket still listens on every
	// interface).
	Interfaces []string `yaml:"interfaces"`
	// RemoteNetworks, when not empty, are the only CIDRs remote candidates
	// may come from; others are discarded before ICE checks them.
	RemoteNetworks []string `yaml:"remote_networks"`
	// LoopbackOnly gathers and accepts loopback addresses only, with UDP4
	// and no mDNS: no packet can leave the machine. Tests run with it.
	LoopbackOnly bool `yaml:"loopback_only"`
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if (c.UDPPortMin == 0) != (c.UDPPortMax == 0) {
		return errors.New("media: udp_port_min and udp_port_max must be set together")
	}
	if c.UDPPortMin > c.UDPPortMax {
		return fmt.Errorf("media: udp_port_min %d is above udp_port_max %d", c.UDPPortMin, c.UDPPortMax)
	}
	if c.UDPMuxPort < 0 || c.UDPMuxPort > 65535 {
		return fmt.Errorf("media: udp_mux_port %d is not a port", c.UDPMuxPort)
	}
	if c.UDPBatchWrite < 0 || c.UDPBatchWrite > maxUDPBatchWrite {
		return fmt.Errorf("media: udp_batch_write %d is not between 0 and %d", c.UDPBatchWrite, maxUDPBatchWrite)
	}
	if c.UDPBatchWrite > 1 && c.UDPMuxPort == 0 {
		return errors.New("media: udp_batch_write needs udp_mux_port")
	}
	for _, ip := range c.PublicIPs {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("media: public_ips: %q is not an IP address", ip)
		}
	}
	if _, err := c.remoteNets(); err != nil {
		return err
	}
	return nil
}

// interfaceFilter reports whether an interface is one of Interfaces (of a
// copy of them: the caller's slice may change).
func (c Config) interfaceFilter() func(name string) bool {
	allowed := slices.Clone(c.Interfaces)
	return func(name string) bool { return slices.Contains(allowed, name) }
}

func (c Config) remoteNets() ([]*net.IPNet, error) {
	nets := make([]*net.IPNet, 0, len(c.RemoteNetworks))
	for _, s := range c.RemoteNetworks {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("media: remote_networks: %q is not a CIDR", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// settingEngine turns the configuration into Pion's network settings. The
// UDP mux, when configured, is opened by the Engine and passed in.
func (c Config) settingEngine(mux ice.UDPMux) webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// The server answers as the DTLS server (setup:passive). A device
	// answers the server's first offer as the DTLS client, as browsers do;
	// when it offers later (an ICE restart after a reconnect) the answer
	// must keep that role, which Pion v4.2.20 does not do by itself
	// (fixed upstream in pion/webrtc#3552): with setup:active, Chromium
	// refuses it ("Failed to set SSL role for the transport"). A door
	// station's first offer gets passive too, and so keeps it after. (The
	// role is a valid one: it cannot be refused.)
	_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
	if c.LoopbackOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetRemoteIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		if len(c.Interfaces) > 0 {
			se.SetInterfaceFilter(c.interfaceFilter())
		}
		if nets, _ := c.remoteNets(); len(nets) > 0 {
			se.SetRemoteIPFilter(func(ip net.IP) bool {
				return slices.ContainsFunc(nets, func(n *net.IPNet) bool { return n.Contains(ip) })
			})
		}
		if len(c.PublicIPs) > 0 {
			// Validate checked the addresses; the rule cannot be refused.
			_ = se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
				External:        slices.Clone(c.PublicIPs),
				AsCandidateType: webrtc.ICECandidateTypeHost,
				Mode:            webrtc.ICEAddressRewriteReplace,
			})
		}
	}
	switch {
	case mux != nil:
		se.SetICEUDPMux(mux)
	case c.UDPPortMin != 0:
		// Validate checked the range; it cannot be refused.
		_ = se.SetEphemeralUDPPortRange(c.UDPPortMin, c.UDPPortMax)
	}
	return se
}
