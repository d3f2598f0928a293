package directory

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// ids reads the call IDs of a site.
func (p *parser) ids(n *yaml.Node, site string) ([]ProvisionID, error) {
	items, err := sequence(n, fmt.Sprintf("site %q: ids", site))
	if err != nil {
		return nil, err
	}
	out := make([]ProvisionID, 0, len(items))
	for _, item := range items {
		id, err := p.id(item)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (p *parser) id(n *yaml.Node) (ProvisionID, error) {
	id := ProvisionID{Line: n.Line}
	fields, err := mapping(n, "a call ID", "id", "name", "monitors", "app_users")
	if err != nil {
		return id, err
	}
	found := false
	for _, f := range fields {
		if f.key != "id" {
			continue
		}
		s, err := scalar(f.value, "id")
		if err != nil {
			return id, err
		}
		id.Number, found = Number(s), true
		if err := id.Number.Validate(); err != nil {
			return id, ruleErr(f.line, "", err)
		}
	}
	if !found {
		return id, lineErr(n.Line, "a call ID needs its number (key \"id\")")
	}
	what := fmt.Sprintf("call ID %q", string(id.Number))
	if id.Name, err = requiredName(n, fields, "name", what+": name"); err != nil {
		return id, err
	}
	for _, f := range fields {
		switch f.key {
		case "monitors":
			id.Monitors, err = p.deviceNames(f.value, what+": monitors")
		case "app_users":
			id.AppUsers, err = p.appUsers(f.value, id)
		}
		if err != nil {
			return id, err
		}
	}
	return id, nil
}

func (p *parser) appUsers(n *yaml.Node, id ProvisionID) ([]ProvisionUser, error) {
	what := fmt.Sprintf("call ID %q: app_users", string(id.Number))
	items, err := sequence(n, what)
	if err != nil {
		return nil, err
	}
	out := make([]ProvisionUser, 0, len(items))
	for _, item := range items {
		u := ProvisionUser{Line: item.Line, Status: StatusActive, Licence: LicenceActive, DisplayName: id.Name}
		fields, err := mapping(item, "an app user", "email", "status", "licence", "devices", "display_name")
		if err != nil {
			return nil, err
		}
		if u.Email, err = requiredScalar(item, fields, "email", "an app user's e-mail"); err != nil {
			return nil, err
		}
		if u.Email, err = NormalizeEmail(u.Email); err != nil {
			return nil, ruleErr(item.Line, what+": ", err)
		}
		who := fmt.Sprintf("call ID %q: app user %s", string(id.Number), u.Email)
		for _, f := range fields {
			var s string
			switch f.key {
			case "status":
				if s, err = scalar(f.value, who+": status"); err == nil {
					u.Status = Status(s)
					if err = checkStatus(u.Status); err != nil {
						err = ruleErr(f.line, who+": ", err)
					}
				}
			case "licence":
				if s, err = scalar(f.value, who+": licence"); err == nil {
					u.Licence = Licence(s)
					if err = checkLicence(u.Licence); err != nil {
						err = ruleErr(f.line, who+": ", err)
					}
				}
			case "display_name":
				if u.DisplayName, err = scalar(f.value, who+": display_name"); err == nil {
					if err = checkName("display name", u.DisplayName); err != nil {
						err = ruleErr(f.line, who+": ", err)
					}
				}
			case "devices":
				u.Devices, err = p.deviceNames(f.value, who+": devices")
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// requiredScalar returns the value of the key of a mapping, which must be present.
func requiredScalar(n *yaml.Node, fields []field, k, what string) (string, error) {
	for _, f := range fields {
		if f.key == k {
			return scalar(f.value, what)
		}
	}
	return "", lineErr(n.Line, "%s is missing (key %q)", what, k)
}

// checkFileLimits checks what the file alone can break in a site: call IDs
// listed once, a user on one call ID, at most MaxUsersPerNumber users per
// call ID and MaxUsersPerSite per site.
func checkFileLimits(s ProvisionSite) error {
	ids := make(map[Number]int, len(s.IDs))
	users := make(map[string]ProvisionID)
	total := 0
	for _, id := range s.IDs {
		if first, dup := ids[id.Number]; dup {
			return &ProvisionError{Line: id.Line, Err: ErrConflict,
				Msg: fmt.Sprintf("site %q: call ID %q is listed twice (first at line %d)", s.Name, string(id.Number), first)}
		}
		ids[id.Number] = id.Line
		for i, u := range id.AppUsers {
			if other, dup := users[u.Email]; dup {
				return &ProvisionError{Line: u.Line, Err: ErrConflict, Msg: fmt.Sprintf(
					"call ID %q: app user %s is already on call ID %q (line %d) of site %q; a user has one call ID per site",
					string(id.Number), u.Email, string(other.Number), other.Line, s.Name)}
			}
			users[u.Email] = id
			if i == MaxUsersPerNumber {
				return &ProvisionError{Line: u.Line, Err: ErrLimit, Msg: fmt.Sprintf(
					"call ID %q: a %s app user (%s); at most %d app users per call ID",
					string(id.Number), ordinal(i+1), u.Email, MaxUsersPerNumber)}
			}
			if total++; total > MaxUsersPerSite {
				return &ProvisionError{Line: u.Line, Err: ErrLimit, Msg: fmt.Sprintf(
					"site %q: app user %s is one too many; at most %d app users per site",
					s.Name, u.Email, MaxUsersPerSite)}
			}
		}
	}
	return nil
}

// ordinal spells 7 as "7th".
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprint(n) + suffix
}
