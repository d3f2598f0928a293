package turn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/foyer-intercom/foyer/internal/pionlog"
)

// minSecretLen: a shorter turn.secret is guessable offline from one
// captured credential; New warns (it does not refuse, so a test config
// keeps working).
const minSecretLen = 16

// Server is the embedded TURN server: one UDP listener (and, with
// tcp_relay, one TCP listener on the same address), REST credentials
// checked for expiry at Allocate, the peer filter and the per-device quota.
type Server struct {
	// Immutable after construction.
	cfg    Config
	secret string
	allow  allowList
	log    *slog.Logger
	srv    *turn.Server
	addr   net.Addr
	tcp    net.Addr // nil without tcp_relay
	url    string

	led *ledger
}

// listen opens the server's UDP socket on cfg.Listen and, with tcp_relay,
// its TCP listener on the same port. When Listen asks for any port (":0"),
// the port the kernel gives the UDP socket may be in use for TCP (another
// connection's local port): then it tries another, up to listenTries
// times. A port asked for by number is tried once. On failure nothing stays
// open.
func listen(cfg Config) (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(cfg.Listen) // validated
	tries := 1
	if port == "0" && cfg.TCPRelay {
		tries = listenTries
	}
	for i := 1; ; i++ {
		pc, err := net.ListenPacket(listenNetwork("udp", cfg), cfg.Listen)
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen: %w", err)
		}
		if !cfg.TCPRelay {
			return pc, nil, nil
		}
		same := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		ln, err := net.Listen(listenNetwork("tcp", cfg), net.JoinHostPort(host, same))
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		if i >= tries || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("turn: listen tcp on port %s, which turn.tcp_relay shares with turn.listen's UDP (free it, or choose another turn.listen port): %w", same, err)
		}
	}
}

// listenTries bounds listen's search for a port free for both UDP and TCP.
const listenTries = 16

// New starts a TURN server on cfg.Listen. secret signs credentials (see
// LoadOrCreateSecret); log receives the server's and pion's logs, never the
// secret or passwords. Close stops it.
func New(cfg Config, secret string, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("turn: no secret")
	}
	if len(secret) < minSecretLen {
		log.Warn("turn: the secret is short; use at least 16 random characters", "length", len(secret))
	}
	if cfg.relayAddr().IsLoopback() && !cfg.listenIsLoopback() {
		log.Warn("turn: relay_ip is loopback, so only clients on this machine can use relays; set turn.relay_ip to the node's public address",
			"relay_ip", cfg.RelayIP, "listen", cfg.Listen)
	}
	allow, _ := parseAllowPeers(cfg.AllowPeers) // validated above
	s := &Server{cfg: cfg, secret: secret, allow: allow, log: log, led: newLedger()}

	pc, ln, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	s.addr = pc.LocalAddr()
	relays := newRelayAllocator(cfg, allow, s.led)
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: pionlog.Factory{Log: log},
		EventHandler: turn.EventHandler{
			OnAuth:              s.authFailed,
			OnAllocationCreated: s.allocated,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: clientPacketConn{PacketConn: pc, led: s.led},
			RelayAddressGenerator: relays, PermissionHandler: s.permit}},
	}
	if ln != nil {
		s.tcp = ln.Addr()
		sc.ListenerConfigs = []turn.ListenerConfig{{Listener: newTCPListener(ln, s.led), RelayAddressGenerator: relays, PermissionHandler: s.permit}}
	}
	if s.srv, err = turn.NewServer(sc); err != nil {
		_ = pc.Close()
		for _, l := range sc.ListenerConfigs {
			_ = l.Listener.Close()
		}
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.url = cfg.PublicURL
	if s.url == "" {
		s.url = "turn:" + net.JoinHostPort(cfg.relayAddr().String(), strconv.Itoa(s.addr.(*net.UDPAddr).Port)) + "?transport=udp"
	}
	return s, nil
}

// listenNetwork is "udp4"/"tcp4" unless Listen names an IPv6 address:
// the relays are IPv4 unless relay_ip is IPv6.
func listenNetwork(proto string, cfg Config) string {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return proto + "6"
	}
	return proto + "4"
}

// auth is pion's AuthHandler: it checks a REST username and returns the
// long-term key (RFC 8489 §9.2.2) of the password it implies; pion then
// checks MESSAGE-INTEGRITY with it. Expiry is checked at Allocate only:
// Refresh, CreatePermission and ChannelBind of an allocation made in time
// go on, so a call is never cut by its credential expiring. pion looks the
// allocation up by the returned user ID too, so a live allocation answers
// only to the credential that made it.
func (s *Server) auth(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	expires, _, err := ParseUsername(ra.Username)
	if err != nil {
		s.led.refuse("bad-username")
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && !time.Now().Before(expires) {
		s.led.refuse("expired")
		s.log.Debug("turn: expired credential", "username", ra.Username, "client", ra.SrcAddr)
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, s.cfg.Realm, restPassword(s.secret, ra.Username)), true
}

// authFailed counts requests whose MESSAGE-INTEGRITY did not match: a
// wrong password, secret or realm.
func (s *Server) authFailed(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		s.led.refuse("bad-password")
		s.log.Debug("turn: wrong password", "username", username, "method", method, "client", src)
	}
}

// quota is pion's QuotaHandler: a device's new allocation beyond
// allocations_per_user, whichever of its credentials it uses, gets 486
// Allocation Quota Reached (RFC 8656 §7.2). The relay allocator counts
// again when it makes the socket, exactly, for requests racing on
// different listeners.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	return s.led.hasRoom(quotaKey(username), s.cfg.AllocationsPerUser)
}

func (s *Server) allocated(src, _ net.Addr, proto, user, _ string, relay net.Addr, _ int) {
	s.log.Debug("turn: allocation", "username", user, "client", src, "transport", proto, "relay", relay)
}

// permit is the peer filter, pion's PermissionHandler for CreatePermission
// and ChannelBind: a relay reaches only allow_peers. The refusal (403) is
// given before any permission exists, so no packet ever leaves toward a
// refused peer.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	ok, reason := peerVerdict(s.allow, peer)
	if !ok {
		s.led.refuse(reason)
		s.log.Debug("turn: peer refused", "peer", peer.String(), "reason", reason, "client", client)
	}
	return ok
}

// ICEServer returns the TURN entry of a device's welcome.ice_servers,
// with credentials valid for credential_ttl from now.
func (s *Server) ICEServer(deviceID string, now time.Time) (urls []string, username, credential string) {
	username, credential = Credentials(s.secret, deviceID, s.cfg.CredentialTTL, now)
	return []string{s.url}, username, credential
}

// Addr returns the UDP address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// TCPAddr returns the TCP address, nil without tcp_relay.
func (s *Server) TCPAddr() net.Addr { return s.tcp }

// Stats returns a copy of the server's counters.
func (s *Server) Stats() Stats { return s.led.stats() }

// Close stops the listeners and closes every allocation.
func (s *Server) Close() error { return s.srv.Close() }
