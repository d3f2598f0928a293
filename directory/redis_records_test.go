package directory

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

// testRedis returns a store on a redis-server started for the test, with
// its keys under prefix, and the store's client; both closed at cleanup.
func testRedis(t *testing.T, prefix string) (*Redis, *redis.Client) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { _ = client.Close() })
	r, err := NewRedis(client, RedisKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, client
}

// TestRedisListsMissingAndCorruptRecords: a list read (records) leaves out
// a record its index names but Redis does not hold (a batch not yet fully
// applied), and answers a record it cannot decode with an error naming it,
// not a list without it: for sites, devices and memberships alike.
func TestRedisListsMissingAndCorruptRecords(t *testing.T) {
	ctx := context.Background()
	r, client := testRedis(t, "records:")

	var ops []Op
	for _, id := range []SiteID{"s_1", "s_2", "s_3"} {
		ops = append(ops, PutSite{Site: Site{ID: id, Name: "Site " + string(id), Settings: DefaultSettings()}})
	}
	for _, id := range []DeviceID{"d_1", "d_2", "d_3"} {
		ops = append(ops, PutDevice{Device: Device{ID: id, Kind: KindDoorStation, Name: "door " + string(id), Site: "s_1"}})
	}
	user := User{ID: "u_1", Email: "anna@example.com"}
	ops = append(ops, PutUser{User: user})
	for _, site := range []SiteID{"s_1", "s_2", "s_3"} {
		ops = append(ops, PutEntry{Entry: Entry{Site: site, Number: "101", Name: "Jansen"}},
			PutMembership{Membership: Membership{Site: site, Number: "101", User: user.ID, DisplayName: "Anna", Status: StatusActive, Licence: LicenceActive}})
	}
	if err := r.Apply(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	set := func(key, value string) {
		t.Helper()
		var err error
		if value == "" {
			err = client.Del(ctx, key).Err()
		} else {
			err = client.Set(ctx, key, value, 0).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	hset := func(key, field, value string) {
		t.Helper()
		var err error
		if value == "" {
			err = client.HDel(ctx, key, field).Err()
		} else {
			err = client.HSet(ctx, key, field, value).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("sites", func(t *testing.T) {
		set(r.keys.site("s_2"), "")
		ss, err := r.Sites(ctx)
		if err != nil || len(ss) != 2 || ss[0].ID != "s_1" || ss[1].ID != "s_3" {
			t.Fatalf("Sites without s_2's record = %+v, %v; want s_1, s_3", ss, err)
		}
		set(r.keys.site("s_3"), "{not json")
		if ss, err := r.Sites(ctx); err == nil || !strings.Contains(err.Error(), "corrupt record "+r.keys.site("s_3")) {
			t.Fatalf("Sites with s_3's record corrupt = %+v, %v; want an error naming s_3", ss, err)
		}
	})
	t.Run("devices", func(t *testing.T) {
		set(r.keys.device("d_2"), "")
		ds, err := r.SiteDevices(ctx, "s_1")
		if err != nil || len(ds) != 2 || ds[0].ID != "d_1" || ds[1].ID != "d_3" {
			t.Fatalf("SiteDevices without d_2's record = %+v, %v; want d_1, d_3", ds, err)
		}
		set(r.keys.device("d_3"), "{not json")
		if ds, err := r.SiteDevices(ctx, "s_1"); err == nil || !strings.Contains(err.Error(), "corrupt record "+r.keys.device("d_3")) {
			t.Fatalf("SiteDevices with d_3's record corrupt = %+v, %v; want an error naming d_3", ds, err)
		}
	})
	t.Run("memberships", func(t *testing.T) {
		hset(r.keys.members("s_2", "101"), string(user.ID), "")
		ms, err := r.Memberships(ctx, user.ID)
		if err != nil || len(ms) != 2 || ms[0].Site != "s_1" || ms[1].Site != "s_3" {
			t.Fatalf("Memberships without the s_2 record = %+v, %v; want s_1, s_3", ms, err)
		}
		hset(r.keys.members("s_3", "101"), string(user.ID), "x{not json")
		if ms, err := r.Memberships(ctx, user.ID); err == nil || !strings.Contains(err.Error(), "corrupt membership record") {
			t.Fatalf("Memberships with the s_3 record corrupt = %+v, %v; want an error", ms, err)
		}
	})
}
