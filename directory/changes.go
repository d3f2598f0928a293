package directory

// changeSet records what a batch of ops touched, each site and device once,
// in the order first touched, for Subscribe. Both stores' writers embed it.
type changeSet struct {
	sites      []SiteID
	devices    []DeviceID
	seenSite   map[SiteID]bool
	seenDevice map[DeviceID]bool
}

func (c *changeSet) touchSite(id SiteID) {
	if id == "" || c.seenSite[id] {
		return
	}
	if c.seenSite == nil {
		c.seenSite = make(map[SiteID]bool)
	}
	c.seenSite[id] = true
	c.sites = append(c.sites, id)
}

func (c *changeSet) touchDevice(id DeviceID) {
	if c.seenDevice[id] {
		return
	}
	if c.seenDevice == nil {
		c.seenDevice = make(map[DeviceID]bool)
	}
	c.seenDevice[id] = true
	c.devices = append(c.devices, id)
}

// changes lists the touched sites, then the touched devices.
func (c *changeSet) changes() []Change {
	out := make([]Change, 0, len(c.sites)+len(c.devices))
	for _, s := range c.sites {
		out = append(out, Change{Site: s})
	}
	for _, d := range c.devices {
		out = append(out, Change{Device: d})
	}
	return out
}
