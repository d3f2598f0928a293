package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
	"github.com/foyer-intercom/foyer/signaling"
)

// DoorAlerts e-mails a site's admins (every role) when one of its door
// stations has been connected to no node for a while, and again when it is
// back: a door station offline lets no visitor call and no code open its
// door, and no metric names it (metrics have no per-device labels).
type DoorAlerts struct {
	Directory directory.Store
	Accounts  *accounts.Store
	Mail      Mailer
	PublicURL string // the portal's address in the messages
	Log       *slog.Logger
}

// Hook makes the hub tell the alerts of door stations going and coming.
func (d DoorAlerts) Hook(c *signaling.Config) {
	c.OnDoorOffline = d.offline
	c.OnDoorOnline = d.online
}

// offline tells the site's admins that door has been gone since since,
// once (another node may have found it gone too), unless it was deleted
// meanwhile.
func (d DoorAlerts) offline(door directory.Device, since time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	cur, err := d.Directory.Device(ctx, door.ID)
	if errors.Is(err, directory.ErrNotFound) {
		return // deleted: nobody waits for it
	}
	if err == nil {
		var first bool
		if first, err = d.Accounts.MarkDoorOffline(ctx, door.ID, since); err == nil && first {
			portal := strings.TrimSuffix(d.PublicURL, "/") + "/admin"
			err = d.tell(ctx, cur, func(to string, site directory.Site) email.Message {
				return email.DoorOffline(to, cur.Name, site.Name, since, portal)
			})
		}
	}
	if err != nil {
		d.Log.Error("telling a site a door station is offline failed", "door_station_id", door.ID, "err", err)
	}
}

// online tells the site's admins that door, reported offline, is back.
func (d DoorAlerts) online(door directory.Device) {
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	since, was, err := d.Accounts.DoorBack(ctx, door.ID)
	if err == nil && was {
		err = d.tell(ctx, door, func(to string, site directory.Site) email.Message {
			return email.DoorOnline(to, door.Name, site.Name, since)
		})
	}
	if err != nil {
		d.Log.Error("telling a site a door station is back failed", "door_station_id", door.ID, "err", err)
	}
}

// tell sends each admin of door's site the message msg makes.
func (d DoorAlerts) tell(ctx context.Context, door directory.Device, msg func(to string, site directory.Site) email.Message) error {
	site, err := d.Directory.Site(ctx, door.Site)
	if err != nil {
		return err
	}
	roles, err := d.Accounts.SiteRoles(ctx, site.ID)
	if err != nil {
		return err
	}
	var errs []error
	for id := range roles {
		adm, err := d.Accounts.Admin(ctx, id)
		if err == nil {
			err = d.Mail.Send(ctx, msg(adm.Email, site))
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// OfflineGauge is foyer_door_stations_offline: the door stations reported
// offline to their sites' admins and not back yet, read from the store at
// each scrape (the last count when the store does not answer within a
// second). Every node of a cluster says the same.
func (d DoorAlerts) OfflineGauge() prometheus.Collector {
	var last atomic.Int64
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "foyer_door_stations_offline",
		Help: "Door stations connected to no node for signaling.door_offline_after, reported to their sites' admins, and not back yet (the same on every node).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if doors, err := d.Accounts.DoorsOffline(ctx); err == nil {
			last.Store(int64(len(doors)))
		} else {
			d.Log.Warn("counting the door stations offline failed", "err", err)
		}
		return float64(last.Load())
	})
}
