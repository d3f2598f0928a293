package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// ProvisioningTTL is how long an installer has to type a provisioning code
// into a door station or monitor.
const ProvisioningTTL = 24 * time.Hour

// provisioningEncoding is Crockford-like base32 without look-alikes,
// readable off a screen and typed into a device's set-up page.
var provisioningEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// Provisioning is a pending one-time code for a device.
type Provisioning struct {
	Device  directory.DeviceID `json:"device"`
	Site    directory.SiteID   `json:"site"`
	Expires time.Time          `json:"expires"`
}

// NewProvisioningCode returns a one-time code (128 random bits, shown as
// groups of four characters) that a device exchanges for its token. Earlier
// codes of the same device stop working.
func (s *Store) NewProvisioningCode(ctx context.Context, device directory.DeviceID, site directory.SiteID) (string, time.Time, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	raw := provisioningEncoding.EncodeToString(b[:])
	var groups []string
	for i := 0; i < len(raw); i += 4 {
		groups = append(groups, raw[i:min(i+4, len(raw))])
	}
	code := strings.Join(groups, "-")
	p := Provisioning{Device: device, Site: site, Expires: s.now().Add(ProvisioningTTL).UTC()}
	err := s.update(ctx, func(tx kv.Tx) error {
		if err := dropProvisioning(tx, device); err != nil {
			return err
		}
		return putJSON(tx, tProvision, provisioningKey(code), p)
	})
	return code, p.Expires, err
}

// provisioningKey normalises a typed code (case, dashes, spaces) and hashes it.
func provisioningKey(code string) string {
	code = strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	return hashKey(directory.HashToken(code))
}

// dropProvisioning removes a device's pending codes.
func dropProvisioning(tx kv.Tx, device directory.DeviceID) error {
	var doomed []string
	err := scanJSON(tx, tProvision, "", func(k string, p Provisioning) error {
		if p.Device == device {
			doomed = append(doomed, k)
		}
		return nil
	})
	for _, k := range doomed {
		if err == nil {
			err = tx.Delete(tProvision, k)
		}
	}
	return err
}

// DropProvisioning cancels a device's pending codes (the device was revoked).
func (s *Store) DropProvisioning(ctx context.Context, device directory.DeviceID) error {
	return s.update(ctx, func(tx kv.Tx) error { return dropProvisioning(tx, device) })
}

// SpendProvisioningCode exchanges a code, once, for what it provisions.
func (s *Store) SpendProvisioningCode(ctx context.Context, code string) (Provisioning, error) {
	var p Provisioning
	err := s.update(ctx, func(tx kv.Tx) error {
		key := provisioningKey(code)
		if err := getJSON(tx, tProvision, key, &p); err != nil {
			return err
		}
		return tx.Delete(tProvision, key)
	})
	if err == nil && !s.now().Before(p.Expires) {
		return Provisioning{}, ErrExpired
	}
	return p, err
}
