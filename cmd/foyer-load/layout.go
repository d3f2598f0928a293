package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
)

const (
	// idSize is how many devices ring for one call ID: 6 app users with
	// one device each (the most an ID may have) and one indoor monitor.
	idSize = 7
	// appsPerID is the app users (one device each) of a generated ID.
	appsPerID = idSize - 1
	// maxIDsPerSite keeps a site within 59,994 app users (6 per ID).
	maxIDsPerSite = 59994 / appsPerID
	// firstNumber is the call ID dialled for a site's first ID; IDs count
	// up from it and stay within the protocol's 6 digits.
	firstNumber = 100000
	// namePrefix marks every device, site and user the tool provisions.
	namePrefix = "ld"
)

// Device kinds as the tool names them (the server's kinds, door stations shortened).
const (
	kindApp     = "app"
	kindMonitor = "monitor"
	kindDoor    = "door"
)

// device is one provisioned device and its token.
type device struct {
	Name  string `json:"name"`
	Token string `json:"token"`
	Kind  string `json:"kind"`
}

// idLayout is one call ID: its 6 app devices, then its monitor.
type idLayout struct {
	Number  string
	Devices [idSize]device
}

// siteLayout is one site: its IDs and the door stations that call them.
type siteLayout struct {
	Index int
	IDs   []*idLayout
	Doors []device
}

// sockets is how many connections the site's devices open.
func (s *siteLayout) sockets() int { return len(s.IDs)*idSize + len(s.Doors) }

// layout is the building(s) the tool provisions, recoverable from the
// device names alone (so a tokens file is all a later run needs).
type layout struct {
	Sites []*siteLayout
}

func siteName(site int) string              { return fmt.Sprintf("%s-s%d", namePrefix, site) }
func doorName(site, j int) string           { return fmt.Sprintf("%s-s%d-door%d", namePrefix, site, j) }
func monitorName(site int, n string) string { return fmt.Sprintf("%s-s%d-%s-mon", namePrefix, site, n) }
func appName(site int, n string, u int) string {
	return fmt.Sprintf("%s-s%d-%s-app%d", namePrefix, site, n, u)
}

// newLayout spreads devices/7 IDs over sites of idsPerSite, and the door
// stations round-robin over those sites. Tokens are filled in by seeding.
func newLayout(devices, doors, idsPerSite int) *layout {
	ids := devices / idSize
	nSites := max(1, (ids+idsPerSite-1)/idsPerSite)
	l := &layout{}
	for s := range nSites {
		l.Sites = append(l.Sites, &siteLayout{Index: s})
	}
	for i := range ids {
		s := l.Sites[i/idsPerSite]
		n := strconv.Itoa(firstNumber + i%idsPerSite)
		id := &idLayout{Number: n}
		for u := range appsPerID {
			id.Devices[u] = device{Name: appName(s.Index, n, u), Kind: kindApp}
		}
		id.Devices[appsPerID] = device{Name: monitorName(s.Index, n), Kind: kindMonitor}
		s.IDs = append(s.IDs, id)
	}
	for j := range doors {
		s := l.Sites[j%nSites]
		s.Doors = append(s.Doors, device{Name: doorName(s.Index, j), Kind: kindDoor})
	}
	return l
}

// writeProvision writes the layout as a provisioning file (DESIGN.md).
func (l *layout) writeProvision(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintln(b, "# Written by foyer-load: a load-test building. Safe to delete.")
	fmt.Fprintln(b, "sites:")
	for _, s := range l.Sites {
		fmt.Fprintf(b, "  - name: %s\n    ring_timeout_s: 30\n", siteName(s.Index))
		if len(s.Doors) > 0 {
			fmt.Fprintln(b, "    door_stations:")
			for _, d := range s.Doors {
				fmt.Fprintf(b, "      - %s\n", d.Name)
			}
		}
		if len(s.IDs) == 0 {
			continue
		}
		fmt.Fprintln(b, "    ids:")
		for _, id := range s.IDs {
			fmt.Fprintf(b, "      - id: %q\n        name: Load %s\n", id.Number, id.Number)
			fmt.Fprintf(b, "        monitors: [%s]\n        app_users:\n", id.Devices[appsPerID].Name)
			for u := range appsPerID {
				fmt.Fprintf(b, "          - email: %s-s%d-%s-u%d@example.com\n            devices: [%s]\n",
					namePrefix, s.Index, id.Number, u, id.Devices[u].Name)
			}
		}
	}
	return b.Flush()
}

// nameRE matches the names newLayout gives: site, then a door or an ID's device.
var nameRE = regexp.MustCompile(`^` + namePrefix + `-s(\d+)-(?:door(\d+)|(\d{1,6})-(?:app(\d)|mon))$`)

// layoutFromTokens rebuilds the layout from the tokens `foyer seed`
// printed. Names the tool did not give are ignored; an ID missing one of
// its 7 devices is an error (the file was not written by this tool).
func layoutFromTokens(tokens map[string]string) (*layout, error) {
	sites := map[int]*siteLayout{}
	ids := map[string]*idLayout{}
	idSite := map[string]int{}
	doorIdx := map[string]int{}
	seen := map[string]int{}
	for name, tok := range tokens {
		m := nameRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		si, _ := strconv.Atoi(m[1])
		s := sites[si]
		if s == nil {
			s = &siteLayout{Index: si}
			sites[si] = s
		}
		if m[2] != "" {
			doorIdx[name], _ = strconv.Atoi(m[2])
			s.Doors = append(s.Doors, device{Name: name, Token: tok, Kind: kindDoor})
			continue
		}
		key := m[1] + "/" + m[3]
		id := ids[key]
		if id == nil {
			id = &idLayout{Number: m[3]}
			ids[key], idSite[key] = id, si
			s.IDs = append(s.IDs, id)
		}
		slot, kind := appsPerID, kindMonitor
		if m[4] != "" {
			slot, _ = strconv.Atoi(m[4])
			kind = kindApp
		}
		if slot >= idSize {
			return nil, fmt.Errorf("tokens: %s: app index out of range", name)
		}
		id.Devices[slot] = device{Name: name, Token: tok, Kind: kind}
		seen[key]++
	}
	for key, n := range seen {
		if n != idSize {
			return nil, fmt.Errorf("tokens: call ID %s has %d of its %d devices", key, n, idSize)
		}
	}
	l := &layout{}
	for _, s := range sites {
		sort.Slice(s.IDs, func(i, j int) bool { return s.IDs[i].Number < s.IDs[j].Number })
		sort.Slice(s.Doors, func(i, j int) bool { return doorIdx[s.Doors[i].Name] < doorIdx[s.Doors[j].Name] })
		l.Sites = append(l.Sites, s)
	}
	sort.Slice(l.Sites, func(i, j int) bool { return l.Sites[i].Index < l.Sites[j].Index })
	if len(l.Sites) == 0 {
		return nil, fmt.Errorf("tokens: no device named by foyer-load (%s-s…)", namePrefix)
	}
	return l, nil
}

// counts returns the ringable devices and door stations of the layout.
func (l *layout) counts() (devices, doors int) {
	for _, s := range l.Sites {
		devices += len(s.IDs) * idSize
		doors += len(s.Doors)
	}
	return devices, doors
}

// take keeps the first devices/7 IDs (site by site) and the first doors
// door stations of every site in turn, dropping sites left empty.
func (l *layout) take(devices, doors int) (*layout, error) {
	haveDevices, haveDoors := l.counts()
	if devices > haveDevices || doors > haveDoors {
		return nil, fmt.Errorf("want %d devices and %d door stations; the tokens have %d and %d",
			devices, doors, haveDevices, haveDoors)
	}
	out := &layout{}
	idsLeft := devices / idSize
	picked := map[int]*siteLayout{}
	for _, s := range l.Sites {
		n := min(idsLeft, len(s.IDs))
		idsLeft -= n
		picked[s.Index] = &siteLayout{Index: s.Index, IDs: s.IDs[:n]}
	}
	for i := 0; doors > 0; i++ {
		for _, s := range l.Sites {
			if i < len(s.Doors) && doors > 0 {
				picked[s.Index].Doors = append(picked[s.Index].Doors, s.Doors[i])
				doors--
			}
		}
	}
	for _, s := range l.Sites {
		if p := picked[s.Index]; p.sockets() > 0 {
			out.Sites = append(out.Sites, p)
		}
	}
	return out, nil
}

// takeCalls keeps, site by site, as many IDs as door stations to call them,
// until there are calls pairs: what the media scenario connects.
func (l *layout) takeCalls(calls int) (*layout, error) {
	out := &layout{}
	left := calls
	for _, s := range l.Sites {
		if n := min(left, len(s.IDs), len(s.Doors)); n > 0 {
			out.Sites = append(out.Sites, &siteLayout{Index: s.Index, IDs: s.IDs[:n], Doors: s.Doors[:n]})
			left -= n
		}
	}
	if left > 0 {
		return nil, fmt.Errorf("want %d calls, each from its own door station to its own ID of the same site; the tokens have %d such pairs", calls, calls-left)
	}
	return out, nil
}
