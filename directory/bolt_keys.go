package directory

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// Key layout of the bbolt store. Identifiers never contain 0x00 (checkID),
// so 0x00 separates key parts; a call ID is encoded as one length byte and
// its digits (numKey), so keys sort entries in CompareNumbers order and a
// prefix "site 0x00 numKey" never matches a longer number. The ring path
// (Ringable) reads only the small index records marked "hot", never a JSON
// document.
const (
	// bucketSites: siteID → JSON Site.
	bucketSites = "sites"
	// bucketSiteNames: parentID 0x00 name → siteID (names unique among siblings).
	bucketSiteNames = "site_names"
	// bucketEntries (hot): siteID 0x00 numKey → entryHeader (members u16,
	// ringable members u16, monitors u32) followed by the entry's name.
	bucketEntries = "entries"
	// bucketMembers (hot): siteID 0x00 numKey userID → one flags byte
	// (flagRingable) followed by the JSON Membership.
	bucketMembers = "members"
	// bucketUserSites: userID 0x00 siteID → number (one membership per user and site).
	bucketUserSites = "user_sites"
	// bucketMemberCount: siteID → uint32 big-endian count of the site's members.
	bucketMemberCount = "member_count"
	// bucketUsers: userID → JSON User.
	bucketUsers = "users"
	// bucketEmails: lower-case e-mail → userID.
	bucketEmails = "emails"
	// bucketDevices: deviceID → JSON Device.
	bucketDevices = "devices"
	// bucketDeviceNames: kind 0x00 scope 0x00 name → deviceID; the scope is
	// the site for door stations and monitors, the user for app devices.
	bucketDeviceNames = "device_names"
	// bucketAppDevices (hot): userID 0x00 deviceID → device name.
	bucketAppDevices = "app_devices"
	// bucketMonitors (hot): siteID 0x00 numKey deviceID → device name.
	bucketMonitors = "monitors"
	// bucketTokens: token hash (32 bytes) → deviceID.
	bucketTokens = "tokens"
	// bucketDeviceTokens: deviceID → token hash, to revoke the old token.
	bucketDeviceTokens = "device_tokens"
)

// allBuckets are created when a store is opened.
var allBuckets = []string{
	bucketSites, bucketSiteNames, bucketEntries, bucketMembers, bucketUserSites,
	bucketMemberCount, bucketUsers, bucketEmails, bucketDevices, bucketDeviceNames,
	bucketAppDevices, bucketMonitors, bucketTokens, bucketDeviceTokens,
}

// flagRingable marks a membership value whose member is rung (Membership.Ringable).
const flagRingable = 1

// entryHeaderLen is the size of the counters before an entry's name.
const entryHeaderLen = 8

// entryHeader are the counters kept on each entry so that DoorDirectory and
// DeleteEntry need not scan; adjustEntry keeps them in step with every
// membership and monitor written.
type entryHeader struct {
	members, ringable uint16
	monitors          uint32
}

func (h entryHeader) shown() bool { return h.ringable > 0 || h.monitors > 0 }

func encodeEntry(h entryHeader, name string) []byte {
	v := make([]byte, entryHeaderLen, entryHeaderLen+len(name))
	binary.BigEndian.PutUint16(v[0:], h.members)
	binary.BigEndian.PutUint16(v[2:], h.ringable)
	binary.BigEndian.PutUint32(v[4:], h.monitors)
	return append(v, name...)
}

func decodeEntry(v []byte) (entryHeader, string, error) {
	if len(v) < entryHeaderLen {
		return entryHeader{}, "", fmt.Errorf("bolt: corrupt entry record of %d bytes", len(v))
	}
	return entryHeader{
		members:  binary.BigEndian.Uint16(v[0:]),
		ringable: binary.BigEndian.Uint16(v[2:]),
		monitors: binary.BigEndian.Uint32(v[4:]),
	}, string(v[entryHeaderLen:]), nil
}

// key joins parts with 0x00.
func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

// siteNumKey is siteID 0x00 numKey: the key of an entry and the prefix of
// its members and monitors.
func siteNumKey(site SiteID, n Number) []byte {
	k := make([]byte, 0, len(site)+2+len(n))
	k = append(k, site...)
	k = append(k, 0, byte(len(n)))
	return append(k, n...)
}

// splitNum parses the tail of a key after "siteID 0x00": numKey and the rest.
func splitNum(tail []byte) (Number, []byte, bool) {
	if len(tail) < 1 || len(tail) < 1+int(tail[0]) {
		return "", nil, false
	}
	l := int(tail[0])
	return Number(tail[1 : 1+l]), tail[1+l:], true
}

// scanPrefix calls fn for every key of b that starts with prefix, in order,
// until fn returns false or an error.
func scanPrefix(b *bbolt.Bucket, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// encodeMember is the value of bucketMembers: flags then JSON.
func encodeMember(m Membership) ([]byte, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var flags byte
	if m.Ringable() {
		flags |= flagRingable
	}
	return append([]byte{flags}, data...), nil
}

func decodeMember(v []byte) (Membership, error) {
	var m Membership
	if len(v) < 1 {
		return m, fmt.Errorf("bolt: empty membership record")
	}
	if err := json.Unmarshal(v[1:], &m); err != nil {
		return m, fmt.Errorf("bolt: corrupt membership record: %w", err)
	}
	return m, nil
}

func encodeCount(n int) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(n))
}

func decodeCount(v []byte) int {
	if len(v) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(v))
}
