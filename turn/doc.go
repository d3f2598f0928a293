// Package turn is foyer's embedded TURN server (RFC 8656), built on
// pion/turn v5: the relay that apps and monitors behind restrictive NATs use
// to reach the node's media sessions.
//
// # Credentials
//
// Every welcome carries TURN REST credentials (draft-uberti-behave-turn-rest):
// username "<unix expiry>:<device id>", password
// base64(HMAC-SHA1(secret, username)). The server recomputes the password
// from the shared secret, so nothing is stored per device and every node of
// a cluster accepts every other node's credentials when they share
// turn.secret. Expiry is checked when an allocation is made, never after:
// a call that outlives its credential keeps its relay (refreshes,
// permissions and channel binds go on).
//
// # Peer filter
//
// A relay exists to reach this deployment's media sessions and nothing
// else. Permissions (CreatePermission, ChannelBind) are granted only toward
// turn.allow_peers; unspecified, broadcast, multicast and link-local
// addresses (169.254.169.254, the cloud metadata service) are refused even
// when listed; IPv4-mapped, NAT64, 6to4 and IPv4-compatible forms are judged
// by the IPv4 address inside. The refusal happens at CreatePermission, so no
// packet ever leaves toward a refused peer. The relay socket checks again,
// per packet, with ports: an "ip:port" entry admits that port only.
//
// # Quota and lifetime
//
// Each device holds at most turn.allocations_per_user live allocations,
// counted by the device ID in the username: every welcome hands out a new
// credential, and a device that reconnects gets no new quota with it.
// Allocation lifetimes are pion's: 10 minutes by default, at most one hour
// per Refresh (RFC 8656 §7.2), so an abandoned relay is gone within the hour.
//
// # Production
//
//	turn:
//	  listen: ":3478"
//	  relay_ip: 203.0.113.7             # the node's public address
//	  relay_port_min: 49160             # open UDP 3478 and this range
//	  relay_port_max: 49999
//	  allow_peers: ["203.0.113.7"]      # where the node's media sessions are reached
//	  secret: ...                       # FOYER_TURN_SECRET; the same on every node
//
// relay_ip is what clients are told to send to; when it is not an address
// of this machine (a cloud NAT 1:1), relays bind every interface and the
// address is only announced. allow_peers lists the addresses the media
// sessions' ICE candidates use (the node's public address, or its media
// network's range).
//
// # Tests
//
// Tests run everything on loopback: the server on 127.0.0.1, relay_ip
// 127.0.0.1, and one other loopback address (127.0.0.2) or one
// 127.0.0.1:port as the allowed "media server"; every other address is
// refused before a packet could leave the machine.
package turn
