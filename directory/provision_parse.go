package directory

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// ProvisionFile is a provisioning file (DESIGN.md, "Provisioning file"),
// parsed and checked on its own by ParseProvision. Every item keeps its
// line so that Provision can name it when the store refuses it.
type ProvisionFile struct {
	Sites []ProvisionSite
}

// ProvisionSite is one site of a provisioning file. Settings the file does
// not give are nil: a new site gets the default, an existing one keeps its own.
type ProvisionSite struct {
	Line          int
	Name          string
	RingTimeout   *time.Duration
	CallTimeLimit *time.Duration
	DoorOpen      *time.Duration
	Preview       *bool
	VisitorPasses *bool
	RemoteOpen    *bool
	DoorStations  []ProvisionDevice
	IDs           []ProvisionID
}

// ProvisionID is one call ID of a site, with its monitors and app users.
type ProvisionID struct {
	Line     int
	Number   Number
	Name     string
	Monitors []ProvisionDevice
	AppUsers []ProvisionUser
}

// ProvisionUser is one app user on a call ID; Email is normalised.
type ProvisionUser struct {
	Line        int
	Email       string
	Status      Status
	Licence     Licence
	DisplayName string
	Devices     []ProvisionDevice
}

// ProvisionDevice is a device named in the file.
type ProvisionDevice struct {
	Line int
	Name string
}

// parser checks a file as it walks it: names of devices and sites are
// unique in the whole file.
type parser struct {
	devices map[string]int // device name → line first seen
	sites   map[string]int // site name → line first seen
}

// ParseProvision decodes and checks a provisioning file strictly: unknown
// keys, wrong types and every rule of the directory that the file alone can
// break are refused with a *ProvisionError naming the line.
func ParseProvision(data []byte) (*ProvisionFile, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	p := &parser{devices: make(map[string]int), sites: make(map[string]int)}
	fields, err := mapping(root, "the file", "sites")
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, lineErr(root.Line, "the file needs a sites list")
	}
	items, err := sequence(fields[0].value, "sites")
	if err != nil {
		return nil, err
	}
	f := &ProvisionFile{}
	for _, item := range items {
		s, err := p.site(item)
		if err != nil {
			return nil, err
		}
		f.Sites = append(f.Sites, s)
	}
	return f, nil
}

func (p *parser) site(n *yaml.Node) (ProvisionSite, error) {
	s := ProvisionSite{Line: n.Line}
	fields, err := mapping(n, "a site", "name", "ring_timeout_s", "call_time_limit_s", "door_open_s", "preview", "visitor_passes", "remote_open", "door_stations", "ids")
	if err != nil {
		return s, err
	}
	if s.Name, err = requiredName(n, fields, "name", "site name"); err != nil {
		return s, err
	}
	if first, dup := p.sites[s.Name]; dup {
		return s, &ProvisionError{Line: n.Line, Msg: fmt.Sprintf("site %q is listed twice (first at line %d)", s.Name, first), Err: ErrConflict}
	}
	p.sites[s.Name] = n.Line
	settings := DefaultSettings()
	for _, f := range fields {
		what := fmt.Sprintf("site %q: %s", s.Name, f.key)
		switch f.key {
		case "ring_timeout_s":
			s.RingTimeout, err = duration(f.value, what, &settings, &settings.RingTimeout)
		case "call_time_limit_s":
			s.CallTimeLimit, err = duration(f.value, what, &settings, &settings.CallTimeLimit)
		case "door_open_s":
			s.DoorOpen, err = duration(f.value, what, &settings, &settings.DoorOpenDuration)
		case "preview":
			s.Preview, err = optionalBool(f.value, what)
		case "visitor_passes":
			s.VisitorPasses, err = optionalBool(f.value, what)
		case "remote_open":
			s.RemoteOpen, err = optionalBool(f.value, what)
		case "door_stations":
			s.DoorStations, err = p.deviceNames(f.value, what)
		case "ids":
			s.IDs, err = p.ids(f.value, s.Name)
		}
		if err != nil {
			return s, err
		}
	}
	return s, checkFileLimits(s)
}

// optionalBool reads true or false, for a field that may be left out.
func optionalBool(n *yaml.Node, what string) (*bool, error) {
	b, err := boolean(n, what)
	return &b, err
}

// duration reads a number of seconds into *field of settings and checks the
// settings' ranges with it.
func duration(n *yaml.Node, what string, settings *Settings, field *time.Duration) (*time.Duration, error) {
	secs, err := seconds(n, what)
	if err != nil {
		return nil, err
	}
	const maxSeconds = 1 << 32 // beyond every range; keeps the Duration from overflowing
	if secs < 0 || secs > maxSeconds {
		return nil, lineErr(n.Line, "%s: %d seconds is out of range", what, secs)
	}
	d := time.Duration(secs) * time.Second
	*field = d
	if err := settings.Validate(); err != nil {
		return nil, ruleErr(n.Line, what+": ", err)
	}
	return &d, nil
}

// requiredName returns the value of the key of a mapping, which must be a valid name.
func requiredName(n *yaml.Node, fields []field, k, what string) (string, error) {
	for _, f := range fields {
		if f.key == k {
			s, err := scalar(f.value, what)
			if err != nil {
				return "", err
			}
			if err := checkName(what, s); err != nil {
				return "", ruleErr(f.line, "", err)
			}
			return s, nil
		}
	}
	return "", lineErr(n.Line, "%s is missing (key %q)", what, k)
}

// deviceNames reads a list of device names, each unique in the file.
func (p *parser) deviceNames(n *yaml.Node, what string) ([]ProvisionDevice, error) {
	items, err := sequence(n, what)
	if err != nil {
		return nil, err
	}
	out := make([]ProvisionDevice, 0, len(items))
	for _, item := range items {
		name, err := scalar(item, what)
		if err != nil {
			return nil, err
		}
		if err := checkName("device name", name); err != nil {
			return nil, ruleErr(item.Line, what+": ", err)
		}
		if first, dup := p.devices[name]; dup {
			return nil, &ProvisionError{Line: item.Line, Err: ErrConflict,
				Msg: fmt.Sprintf("device name %q is used twice (first at line %d); device names are unique in the file", name, first)}
		}
		p.devices[name] = item.Line
		out = append(out, ProvisionDevice{Line: item.Line, Name: name})
	}
	return out, nil
}
