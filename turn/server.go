package turn

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Server is the embedded TURN server.
type Server struct {
	// Immutable after construction.
	cfg    Config
	secret string
	allow  []netip.Prefix
	log    *slog.Logger
	srv    *turn.Server
	addr   net.Addr
	url    string

	mu      sync.Mutex
	live    map[string]int    // guarded by mu; live allocations by username
	total   uint64            // guarded by mu; allocations ever made
	refused map[string]uint64 // guarded by mu; refusals by reason
}

// Stats are the server's counters.
type Stats struct {
	Active  int               // live allocations
	Total   uint64            // allocations ever made
	Refused map[string]uint64 // refused requests by reason (expired, quota, loopback, private, …)
}

// New starts a TURN server on cfg.Listen (UDP). secret signs credentials.
func New(cfg Config, secret string, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, fmt.Errorf("turn: no secret")
	}
	allow, _ := parsePeers(cfg.AllowPeers) // validated
	pc, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("turn: listen: %w", err)
	}
	s := &Server{cfg: cfg, secret: secret, allow: allow, log: log, addr: pc.LocalAddr(),
		live: make(map[string]int), refused: make(map[string]uint64)}
	s.url = cfg.PublicURL
	if s.url == "" {
		s.url = fmt.Sprintf("turn:%s:%d?transport=udp", cfg.RelayIP, pc.LocalAddr().(*net.UDPAddr).Port)
	}
	s.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.auth,
		QuotaHandler:  s.quota,
		LoggerFactory: logging.NewDefaultLoggerFactory(),
		EventHandler: turn.EventHandler{
			OnAllocationCreated: s.allocated,
			OnAllocationDeleted: s.deallocated,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            pc,
			RelayAddressGenerator: s.relays(),
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	return s, nil
}

// relays binds relay sockets on relay_ip when it is loopback (demos and
// tests), on every interface otherwise (a public relay_ip is often a NAT's),
// announcing relay_ip either way.
func (s *Server) relays() turn.RelayAddressGenerator {
	ip := net.ParseIP(s.cfg.RelayIP)
	bind := "0.0.0.0"
	if ip.IsLoopback() {
		bind = s.cfg.RelayIP
	}
	if s.cfg.RelayPortMin != 0 {
		return &turn.RelayAddressGeneratorPortRange{RelayAddress: ip, Address: bind, MinPort: s.cfg.RelayPortMin, MaxPort: s.cfg.RelayPortMax}
	}
	return &turn.RelayAddressGeneratorStatic{RelayAddress: ip, Address: bind}
}

// auth checks REST credentials. Expiry is checked at Allocate only:
// refreshes, permissions and channel binds of an allocation made in time go
// on, so a call is never cut by its credential expiring.
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	exp, _, err := ParseUsername(ra.Username)
	if err != nil {
		s.refuse("bad_username")
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && time.Now().After(exp) {
		s.refuse("expired")
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, s.cfg.Realm, password1(s.secret, ra.Username)), true
}

// quota refuses a new allocation beyond allocations_per_user.
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	s.mu.Lock()
	ok := s.live[username] < s.cfg.AllocationsPerUser
	s.mu.Unlock()
	if !ok {
		s.refuse("quota")
	}
	return ok
}

func (s *Server) allocated(_, _ net.Addr, _, user, _ string, _ net.Addr, _ int) {
	s.mu.Lock()
	s.live[user]++
	s.total++
	s.mu.Unlock()
}

func (s *Server) deallocated(_, _ net.Addr, _, user, _ string) {
	s.mu.Lock()
	if s.live[user]--; s.live[user] <= 0 {
		delete(s.live, user)
	}
	s.mu.Unlock()
}

// permit is the peer filter: a relay reaches only allow_peers. The refusal
// happens at CreatePermission/ChannelBind, so no packet ever leaves toward
// a refused peer.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	ok, reason := peerVerdict(s.allow, peer)
	if !ok {
		s.refuse(reason)
		s.log.Debug("turn: peer refused", "reason", reason)
	}
	return ok
}

func (s *Server) refuse(reason string) {
	s.mu.Lock()
	s.refused[reason]++
	s.mu.Unlock()
}

// ICEServer returns the TURN entry of a device's welcome.ice_servers.
func (s *Server) ICEServer(device string, now time.Time) (urls []string, username, credential string) {
	username, credential = Credentials(s.secret, device, s.cfg.CredentialTTL, now)
	return []string{s.url}, username, credential
}

// Addr returns the UDP address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Total: s.total, Refused: make(map[string]uint64, len(s.refused))}
	for _, n := range s.live {
		st.Active += n
	}
	for k, v := range s.refused {
		st.Refused[k] = v
	}
	return st
}

// Close stops the server and its allocations.
func (s *Server) Close() error { return s.srv.Close() }
