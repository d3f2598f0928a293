package directory

// changeSet records what a batch of ops touched, each site, device and
// user once, in the order first touched, for Subscribe. Both stores'
// writers embed it.
type changeSet struct {
	sites      []SiteID
	devices    []DeviceID
	users      []UserID
	seenSite   map[SiteID]bool
	seenDevice map[DeviceID]bool
	seenUser   map[UserID]bool
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

// touchUser records a change of a user's memberships.
func (c *changeSet) touchUser(id UserID) {
	if c.seenUser[id] {
		return
	}
	if c.seenUser == nil {
		c.seenUser = make(map[UserID]bool)
	}
	c.seenUser[id] = true
	c.users = append(c.users, id)
}

// changes lists the touched sites, then the touched devices, then users.
func (c *changeSet) changes() []Change {
	out := make([]Change, 0, len(c.sites)+len(c.devices)+len(c.users))
	for _, s := range c.sites {
		out = append(out, Change{Site: s})
	}
	for _, d := range c.devices {
		out = append(out, Change{Device: d})
	}
	for _, u := range c.users {
		out = append(out, Change{User: u})
	}
	return out
}
