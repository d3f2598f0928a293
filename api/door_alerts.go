package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
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
//
// The hub tells it of each door station connecting (recorded in the store,
// shared by the nodes) and of each connection closing (kept in memory, to
// say since when: a store write at each close would make one at each
// reconnection); every node sweeps (Run): a door station connected to no
// node is recorded gone, since its connection closed if this node saw
// that, else since the sweep (its node died or restarted), and one gone
// for After is reported, once however many nodes find it. A door station
// that has never connected (one still being installed) is not watched.
// Use a DoorAlerts through a pointer, and hook it before running it.
type DoorAlerts struct {
	Directory directory.Store
	Accounts  *accounts.Store
	Mail      Mailer
	PublicURL string        // the portal's address in the messages
	After     time.Duration // how long a door station must be gone to be reported; 0: 5 minutes
	Log       *slog.Logger

	mu     sync.Mutex
	closed map[directory.DeviceID]time.Time // door stations whose connection here closed, and when; guarded by mu
}

// DefaultDoorOffline is how long a door station must be gone before its
// site's admins are told: longer than a router's reboot or a network blip.
const DefaultDoorOffline = 5 * time.Minute

// sweepsPerDelay: a sweep every fifth of After, so that a door station is
// reported at most a fifth of After late.
const sweepsPerDelay = 5

// Hook makes the hub tell the alerts of door stations coming and going.
func (d *DoorAlerts) Hook(c *signaling.Config) {
	c.OnDoorOnline = d.online
	c.OnDoorGone = d.closedHere
}

// Run sweeps every fifth of After until ctx ends; connected says which of
// the door stations are connected to any node (the hub's Connected). The
// first sweep waits that long too, so that the door stations of a
// cluster that restarted have connected again.
func (d *DoorAlerts) Run(ctx context.Context, connected Connected) {
	t := time.NewTicker(d.after() / sweepsPerDelay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.Sweep(ctx, now, connected)
		}
	}
}

func (d *DoorAlerts) after() time.Duration {
	if d.After <= 0 {
		return DefaultDoorOffline
	}
	return d.After
}

// Sweep looks at every door station that has connected, as of now: one
// connected is recorded so (and told back, if it was reported offline: a
// sweep found it gone as it reconnected); one connected nowhere is
// recorded gone, since its connection here closed or else since now; one
// gone for After is reported offline.
func (d *DoorAlerts) Sweep(ctx context.Context, now time.Time, connected Connected) {
	rctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	seen, err := d.Accounts.DoorsSeen(rctx)
	var told map[directory.DeviceID]time.Time
	if err == nil {
		told, err = d.Accounts.DoorsOffline(rctx)
	}
	if err != nil {
		d.Log.Error("reading the door stations to watch failed", "err", err)
		return
	}
	ids := make([]directory.DeviceID, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	on := connected(rctx, ids)
	for id, since := range seen {
		dctx, cancel := context.WithTimeout(ctx, mailTimeout) // a door's messages wait no longer
		d.sweepOne(dctx, now, id, since, on[id], told)
		cancel()
	}
	d.mu.Lock()
	for id, at := range d.closed {
		if now.Sub(at) > d.after() {
			delete(d.closed, id) // a door station this node's sweeps never found (its first connection not recorded)
		}
	}
	d.mu.Unlock()
}

// sweepOne is Sweep for door station id, recorded gone since since (zero:
// connected), connected to some node now or not (on).
func (d *DoorAlerts) sweepOne(ctx context.Context, now time.Time, id directory.DeviceID, since time.Time, on bool, told map[directory.DeviceID]time.Time) {
	d.mu.Lock()
	closed, closedHere := d.closed[id]
	d.mu.Unlock()
	if on {
		if closedHere && closed.Before(now) {
			d.forget(id, closed) // a close after the sweep asked stays for the next
		}
		if !since.IsZero() {
			d.back(ctx, id)
		}
		return
	}
	var err error
	switch {
	case closedHere && (since.IsZero() || closed.After(since)):
		if err = d.Accounts.DoorClosed(ctx, id, closed); err == nil {
			since = closed
		}
	case since.IsZero():
		err = d.Accounts.DoorGone(ctx, id, now)
	}
	if err != nil {
		d.Log.Error("recording a door station gone failed", "door_station_id", id, "err", err)
		return // the next sweep tries again
	}
	if closedHere {
		d.forget(id, closed)
	}
	if !since.IsZero() && now.Sub(since) >= d.after() {
		_, wasTold := told[id]
		d.offline(ctx, id, since, wasTold)
	}
}

// forget forgets that id's connection here closed at at, unless it has
// closed again since.
func (d *DoorAlerts) forget(id directory.DeviceID, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed[id].Equal(at) {
		delete(d.closed, id)
	}
}

// closedHere keeps when door's connection to this node closed, for the
// sweeps.
func (d *DoorAlerts) closedHere(door directory.Device, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed == nil {
		d.closed = make(map[directory.DeviceID]time.Time)
	}
	d.closed[door.ID] = at
}

// offline tells the site's admins that door has been gone since since,
// once (told: it was; another node may have found it gone too), unless it
// was deleted (then it is forgotten, and no longer counted offline). When
// nobody could be told (the mail server did not answer), the next sweep
// tries again.
func (d *DoorAlerts) offline(ctx context.Context, id directory.DeviceID, since time.Time, told bool) {
	door, err := d.Directory.Device(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		err = d.Accounts.ForgetDoor(ctx, id) // deleted: nobody waits for it
	} else if err == nil && !told {
		var first bool
		if first, err = d.Accounts.MarkDoorOffline(ctx, id, since); err == nil && first {
			d.Log.Warn("door station offline", "door_station_id", id, "site_id", door.Site, "since", since)
			portal := strings.TrimSuffix(d.PublicURL, "/") + "/admin"
			var sent int
			sent, err = d.tell(ctx, door, func(to string, site directory.Site) email.Message {
				return email.DoorOffline(to, door.Name, site.Name, since, portal)
			})
			if sent == 0 && err != nil {
				err = errors.Join(err, d.Accounts.UnmarkDoorOffline(ctx, id))
			}
		}
	}
	if err != nil {
		d.Log.Error("telling a site a door station is offline failed", "door_station_id", id, "err", err)
	}
}

// online records that door, connecting to this node, is connected.
func (d *DoorAlerts) online(door directory.Device) {
	ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
	defer cancel()
	d.back(ctx, door.ID)
}

// back records that door station id is connected, and tells its site's
// admins that it is back if it was reported offline.
func (d *DoorAlerts) back(ctx context.Context, id directory.DeviceID) {
	went, told, err := d.Accounts.DoorConnected(ctx, id)
	if err == nil && told {
		var door directory.Device
		if door, err = d.Directory.Device(ctx, id); err == nil {
			_, err = d.tell(ctx, door, func(to string, site directory.Site) email.Message {
				return email.DoorOnline(to, door.Name, site.Name, went)
			})
		}
	}
	if err != nil {
		d.Log.Error("telling a site a door station is back failed", "door_station_id", id, "err", err)
	}
}

// tell sends each admin of door's site the message msg makes, and says
// to how many it was sent.
func (d *DoorAlerts) tell(ctx context.Context, door directory.Device, msg func(to string, site directory.Site) email.Message) (int, error) {
	site, err := d.Directory.Site(ctx, door.Site)
	if err != nil {
		return 0, err
	}
	roles, err := d.Accounts.SiteRoles(ctx, site.ID)
	if err != nil {
		return 0, err
	}
	var errs []error
	sent := 0
	for id := range roles {
		adm, err := d.Accounts.Admin(ctx, id)
		if err == nil {
			err = d.Mail.Send(ctx, msg(adm.Email, site))
		}
		if err == nil {
			sent++
		}
		errs = append(errs, err)
	}
	return sent, errors.Join(errs...)
}

// OfflineGauge is foyer_door_stations_offline: the door stations reported
// offline to their sites' admins and not back yet, read from the store at
// each scrape (the last count when the store does not answer within a
// second). Every node of a cluster says the same.
func (d *DoorAlerts) OfflineGauge() prometheus.Collector {
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
