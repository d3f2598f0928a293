package directory

import (
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"strings"
)

// Key layout of the Redis store. Every key is
//
//	<prefix>{<tag>}:<name>[:<part>…]
//
// The hash tag decides the Redis Cluster slot, and it is also the unit of
// atomic application (see redis_commit.go): the writes of one Apply to one
// tag are made by one Lua script. Two kinds of tag exist:
//
//   - {s:<siteID>}: every key of one site, so one site's records move and
//     change together;
//   - {g:<n>}: the global indexes (users, e-mails, devices, device names,
//     tokens), spread over redisGlobalBuckets buckets by a hash of the
//     record's own identifier, so one user's, one device's or one token's
//     keys always share a bucket;
//
// plus two fixed tags: {sites} (the list of sites and the names of top-level
// sites) and {w} (the write lock, the journal and the batch counter).
//
// Identifiers never contain ':', '{' or '}' (checkID), and names come last
// in a key, so no two records share a key. Every tag also holds one
// bookkeeping key, redisAppliedKey. Every record below is written only by
// Apply (through the commit script), never directly.
const (
	// redisSiteKey, tag {s:<site>}, string: the JSON Site. Written by PutSite.
	redisSiteKey = "site"
	// redisChildrenKey, tag {s:<site>}, hash: sub-site name → sub-site ID
	// (names are unique among siblings). Written by PutSite of a child.
	redisChildrenKey = "children"
	// redisEntriesKey, tag {s:<site>}, hash: number → "members ringable
	// monitors name" (three decimal counters kept by Apply, then the
	// entry's name), so that DoorDirectory and DeleteEntry need not scan.
	// Written by PutEntry, DeleteEntry, PutMembership, DeleteMembership and
	// PutDevice/DeleteDevice of monitors.
	redisEntriesKey = "entries"
	// redisMembersKey, tag {s:<site>}, hash per number (…:m:<number>):
	// userID → one flags byte (flagRingable) then the JSON Membership.
	// Written by PutMembership and DeleteMembership.
	redisMembersKey = "m"
	// redisMonitorsKey, tag {s:<site>}, hash per number (…:mon:<number>):
	// deviceID → device name. Written by PutDevice and DeleteDevice of monitors.
	redisMonitorsKey = "mon"
	// redisCountKey, tag {s:<site>}, string: decimal count of the site's
	// app users. Written by PutMembership and DeleteMembership.
	redisCountKey = "count"
	// redisRingKey (hot), tag {s:<site>}, string per number
	// (…:ring:<number>): the devices Ringable returns, one line each,
	// "a\t<id>\t<user>\t<name>" for an app device of a ringable member and
	// "m\t<id>\t<name>" for a monitor (names never hold control
	// characters). It exists exactly when the entry exists, so Ringable is
	// one GET. Recomputed by Apply whenever an op touches the number, its
	// members, their app devices or its monitors.
	redisRingKey = "ring"
	// redisSiteDevicesKey, tag {s:<site>}, hash: deviceID → kind of every
	// door station and monitor of the site, for SiteDevices. Written by
	// PutDevice and DeleteDevice of door stations and monitors.
	redisSiteDevicesKey = "devs"
	// redisCallersKey, tag {s:<site>}, hash: deviceID → the door station's
	// own site, for every door station of another site whose CallSites
	// name this one, for CallingDoors. Written by PutDevice and
	// DeleteDevice of door stations, in the same batch as the device.
	redisCallersKey = "callers"

	// redisSitesKey, tag {sites}, hash: siteID → "" for every site, for
	// Sites. Written by PutSite.
	redisSitesKey = "all"
	// redisRootsKey, tag {sites}, hash: top-level site name → site ID.
	// Written by PutSite of a site without parent.
	redisRootsKey = "roots"

	// redisUserKey, tag {g:bucket(user)}, string: the JSON User. Written by PutUser.
	redisUserKey = "u"
	// redisUserSitesKey, tag {g:bucket(user)}, hash per user (…:us:<user>):
	// siteID → one flags byte (flagRingable) then the number, one per
	// membership, for Memberships and Targets. Written by PutMembership
	// and DeleteMembership.
	redisUserSitesKey = "us"
	// redisUserAppsKey, tag {g:bucket(user)}, hash per user (…:ua:<user>):
	// deviceID → name of each app device, to rebuild ring records. Written
	// by PutDevice and DeleteDevice of app devices.
	redisUserAppsKey = "ua"
	// redisEmailKey, tag {g:bucket(email)}, string per lower-case e-mail
	// (…:email:<email>): the user ID. Written by PutUser.
	redisEmailKey = "email"
	// redisDeviceKey, tag {g:bucket(device)}, string: the JSON Device.
	// Written by PutDevice and DeleteDevice.
	redisDeviceKey = "d"
	// redisDeviceTokenKey, tag {g:bucket(device)}, string per device
	// (…:dt:<device>): the hex hash of its token, to revoke it. Written by
	// SetDeviceToken and DeleteDevice.
	redisDeviceTokenKey = "dt"
	// redisDeviceNameKey, tag {g:bucket(kind, scope, name)}, string per
	// name (…:dn:<kind>:<scope>:<name>): the device ID; the scope is the
	// site of a door station or monitor, the user of an app device.
	// Written by PutDevice and DeleteDevice.
	redisDeviceNameKey = "dn"
	// redisTokenKey, tag {g:bucket(hash)}, string per token hash
	// (…:t:<hex hash>): the JSON Device it authenticates, kept in step
	// with the device record so that DeviceByToken is one GET. Written by
	// SetDeviceToken, PutDevice and DeleteDevice.
	redisTokenKey = "t"

	// redisLockKey, tag {w}, string: the write lock, holding its owner's
	// random token, with a TTL (redisLockTTL). Set by Apply with SET NX PX,
	// deleted by compare-and-delete.
	redisLockKey = "lock"
	// redisJournalKey, tag {w}, string: the encoded writes of the batch
	// being applied (redis_journal.go); present only between an Apply's commit
	// point and the end of its application, or after a crash in between.
	redisJournalKey = "journal"
	// redisStagedJournalKey, tag {w}, string per lock token
	// (…:staged:<token>): a journal written before the commit point, with
	// a TTL; the commit point renames it to redisJournalKey.
	redisStagedJournalKey = "staged"
	// redisSeqKey, tag {w}, string: the counter numbering batches (INCR
	// when the lock is taken).
	redisSeqKey = "seq"

	// redisAppliedKey, in every tag, string: the number of the last batch
	// applied to that tag, so that a batch is applied to a tag at most once
	// and never after a newer one (see redis_commit.go).
	redisAppliedKey = "applied"
)

// redisGlobalBuckets is how many tags the global indexes are spread over:
// enough to spread them over the slots of any realistic cluster, few
// enough that a batch touching thousands of users commits in a few hundred
// scripts.
const redisGlobalBuckets = 1024

// redisKeys builds the keys of one store (one prefix).
type redisKeys struct{ prefix string }

// key joins a tag and the parts of a key name.
func (k redisKeys) key(tag string, parts ...string) string {
	var b strings.Builder
	b.WriteString(k.prefix)
	b.WriteByte('{')
	b.WriteString(tag)
	b.WriteString("}")
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// siteTag is the tag of every key of one site.
func siteTag(id SiteID) string { return "s:" + string(id) }

// globalTag is the bucket tag of a global record identified by id.
func globalTag(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return "g:" + strconv.Itoa(int(h.Sum32()%redisGlobalBuckets))
}

// redisTag returns the hash tag of a key built by redisKeys.
func redisTag(key string) string {
	i := strings.IndexByte(key, '{')
	j := strings.IndexByte(key[i+1:], '}')
	return key[i+1 : i+1+j]
}

func (k redisKeys) site(id SiteID) string     { return k.key(siteTag(id), redisSiteKey) }
func (k redisKeys) children(id SiteID) string { return k.key(siteTag(id), redisChildrenKey) }
func (k redisKeys) entries(id SiteID) string  { return k.key(siteTag(id), redisEntriesKey) }
func (k redisKeys) count(id SiteID) string    { return k.key(siteTag(id), redisCountKey) }
func (k redisKeys) siteDevices(id SiteID) string {
	return k.key(siteTag(id), redisSiteDevicesKey)
}
func (k redisKeys) callers(id SiteID) string { return k.key(siteTag(id), redisCallersKey) }
func (k redisKeys) members(id SiteID, n Number) string {
	return k.key(siteTag(id), redisMembersKey, string(n))
}
func (k redisKeys) monitors(id SiteID, n Number) string {
	return k.key(siteTag(id), redisMonitorsKey, string(n))
}
func (k redisKeys) ring(id SiteID, n Number) string {
	return k.key(siteTag(id), redisRingKey, string(n))
}

func (k redisKeys) sites() string { return k.key("sites", redisSitesKey) }
func (k redisKeys) roots() string { return k.key("sites", redisRootsKey) }

// siteNames is the hash of the names of parent's sub-sites (of top-level
// sites when parent is "").
func (k redisKeys) siteNames(parent SiteID) string {
	if parent == "" {
		return k.roots()
	}
	return k.children(parent)
}

func (k redisKeys) user(id UserID) string {
	return k.key(globalTag(string(id)), redisUserKey, string(id))
}
func (k redisKeys) userSites(id UserID) string {
	return k.key(globalTag(string(id)), redisUserSitesKey, string(id))
}
func (k redisKeys) userApps(id UserID) string {
	return k.key(globalTag(string(id)), redisUserAppsKey, string(id))
}
func (k redisKeys) email(e string) string { return k.key(globalTag(e), redisEmailKey, e) }
func (k redisKeys) device(id DeviceID) string {
	return k.key(globalTag(string(id)), redisDeviceKey, string(id))
}
func (k redisKeys) deviceToken(id DeviceID) string {
	return k.key(globalTag(string(id)), redisDeviceTokenKey, string(id))
}
func (k redisKeys) deviceName(kind DeviceKind, scope, name string) string {
	id := string(kind) + ":" + scope + ":" + name
	return k.key(globalTag(id), redisDeviceNameKey, id)
}
func (k redisKeys) token(h TokenHash) string { return k.tokenHex(hex.EncodeToString(h[:])) }

// tokenHex is the key of a token hash written in hex (redisDeviceTokenKey's value).
func (k redisKeys) tokenHex(x string) string { return k.key(globalTag(x), redisTokenKey, x) }

func (k redisKeys) lock() string    { return k.key("w", redisLockKey) }
func (k redisKeys) journal() string { return k.key("w", redisJournalKey) }
func (k redisKeys) seq() string     { return k.key("w", redisSeqKey) }
func (k redisKeys) stagedJournal(token string) string {
	return k.key("w", redisStagedJournalKey, token)
}

// applied is the bookkeeping key of a tag.
func (k redisKeys) applied(tag string) string { return k.key(tag, redisAppliedKey) }

// channel is the pub/sub channel of committed changes. Pub/sub channels
// are not keys: in a cluster, PUBLISH reaches subscribers on every node.
func (k redisKeys) channel() string { return k.prefix + "changes" }
