package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLayoutRoundTrip checks that a tokens file is all a later run needs:
// the layout rebuilt from the device names is the one that was seeded.
func TestLayoutRoundTrip(t *testing.T) {
	l := newLayout(25*idSize, 7, 10) // 25 IDs: sites of 10, 10, 5
	if len(l.Sites) != 3 || len(l.Sites[2].IDs) != 5 {
		t.Fatalf("sites: %d, last has %d IDs", len(l.Sites), len(l.Sites[len(l.Sites)-1].IDs))
	}
	tokens := map[string]string{"someone-else": "tok"}
	for _, s := range l.Sites {
		for _, d := range s.Doors {
			tokens[d.Name] = "t-" + d.Name
		}
		for _, id := range s.IDs {
			for _, d := range id.Devices {
				tokens[d.Name] = "t-" + d.Name
			}
		}
	}
	back, err := layoutFromTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	devices, doors := back.counts()
	if devices != 25*idSize || doors != 7 {
		t.Fatalf("rebuilt %d devices and %d doors", devices, doors)
	}
	for i, s := range back.Sites {
		want := l.Sites[i]
		if len(s.IDs) != len(want.IDs) || len(s.Doors) != len(want.Doors) {
			t.Fatalf("site %d: %d IDs %d doors, want %d and %d", i, len(s.IDs), len(s.Doors), len(want.IDs), len(want.Doors))
		}
		for j, id := range s.IDs {
			for k, d := range id.Devices {
				if d.Name != want.IDs[j].Devices[k].Name || d.Token != "t-"+d.Name || d.Kind != want.IDs[j].Devices[k].Kind {
					t.Fatalf("site %d ID %s slot %d: %+v", i, id.Number, k, d)
				}
			}
		}
	}

	sub, err := back.take(12*idSize, 4)
	if err != nil {
		t.Fatal(err)
	}
	if devices, doors := sub.counts(); devices != 12*idSize || doors != 4 {
		t.Fatalf("take: %d devices, %d doors", devices, doors)
	}
	if _, err := back.take(26*idSize, 0); err == nil {
		t.Fatal("took more devices than the tokens have")
	}

	// The media scenario: door stations paired with IDs of their own site.
	pairs := 0
	for _, s := range back.Sites {
		pairs += min(len(s.IDs), len(s.Doors))
	}
	calls, err := back.takeCalls(pairs)
	if err != nil {
		t.Fatal(err)
	}
	if devices, doors := calls.counts(); devices != pairs*idSize || doors != pairs {
		t.Fatalf("takeCalls(%d): %d devices, %d doors", pairs, devices, doors)
	}
	for _, s := range calls.Sites {
		if len(s.IDs) != len(s.Doors) || len(s.IDs) == 0 {
			t.Fatalf("takeCalls: site %d has %d IDs for %d door stations", s.Index, len(s.IDs), len(s.Doors))
		}
	}
	if _, err := back.takeCalls(pairs + 1); err == nil {
		t.Fatalf("took %d calls from tokens that pair only %d", pairs+1, pairs)
	}

	delete(tokens, l.Sites[0].IDs[0].Devices[3].Name)
	if _, err := layoutFromTokens(tokens); err == nil {
		t.Fatal("an ID missing a device was accepted")
	}
}

func TestProvisionFile(t *testing.T) {
	var b bytes.Buffer
	if err := newLayout(2*idSize, 1, 10).writeProvision(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"name: ld-s0", "- ld-s0-door0", `id: "100001"`, "monitors: [ld-s0-100001-mon]", "devices: [ld-s0-100001-app5]"} {
		if !strings.Contains(out, want) {
			t.Errorf("provisioning file lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "email:"); n != 2*appsPerID {
		t.Errorf("%d app users, want %d", n, 2*appsPerID)
	}
}

func TestSummarise(t *testing.T) {
	var ns []int64
	for i := 1000; i >= 1; i-- { // 1..1000 ms, unsorted
		ns = append(ns, int64(i)*1e6)
	}
	l := summarise(ns)
	if l.N != 1000 || l.P50 != 500 || l.P99 != 990 || l.P999 != 999 || l.Max != 1000 || l.Mean != 500.5 {
		t.Fatalf("%+v", l)
	}
	// Nearest rank where p × n is not whole: of 10 samples (1..10 ms) the
	// p50 is the 5th (rank ⌈5⌉), the p99 and p999 the 10th (⌈9.9⌉, ⌈9.99⌉).
	var ten []int64
	for i := int64(1); i <= 10; i++ {
		ten = append(ten, i*1e6)
	}
	if l := summarise(ten); l.P50 != 5 || l.P99 != 10 || l.P999 != 10 {
		t.Fatalf("of 1..10 ms: %+v", l)
	}
	// Of 2,000 samples (1..2,000 ms) the p999 is the 1,998th (0.999 × 2,000),
	// the p99 the 1,980th.
	var k2 []int64
	for i := int64(1); i <= 2000; i++ {
		k2 = append(k2, i*1e6)
	}
	if l := summarise(k2); l.P50 != 1000 || l.P99 != 1980 || l.P999 != 1998 {
		t.Fatalf("of 1..2,000 ms: %+v", l)
	}
	if one := summarise([]int64{3e6}); one.P50 != 3 || one.P999 != 3 {
		t.Fatalf("%+v", one)
	}
	if (summarise(nil) != latency{}) {
		t.Fatal("empty input")
	}
}

func TestSplitShards(t *testing.T) {
	l := newLayout(30*idSize, 30, 10) // 3 sites of 70 devices + 10 doors
	o := &options{perWorker: 100, sourceIPs: 4}
	shards, err := splitShards(l, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 {
		t.Fatalf("%d shards, want 3 (80 sockets per site, 100 per worker)", len(shards))
	}
	for _, sh := range shards {
		if len(sh.SourceIPs) != 4 {
			t.Fatalf("source IPs %v", sh.SourceIPs)
		}
	}
	o.perWorker = 50
	if _, err := splitShards(l, o); err == nil {
		t.Fatal("a site larger than a worker was accepted")
	}
}
