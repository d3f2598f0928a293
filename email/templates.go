package email

import (
	"bytes"
	"embed"
	"text/template"
	"time"
)

//go:embed templates/*.txt
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.txt"))

// render fills a template; the subject is its first line.
func render(name, to string, data any) Message {
	var b bytes.Buffer
	// Cannot fail: the templates are parsed at start-up (template.Must),
	// the data are strings, and every template is rendered in the tests.
	_ = templates.ExecuteTemplate(&b, name, data)
	subject, body, _ := bytes.Cut(b.Bytes(), []byte("\n"))
	return Message{To: to, Subject: string(subject), Text: string(bytes.TrimLeft(body, "\n"))}
}

// Invitation invites a new app user: their temporary password, which they
// must replace at the first sign-in.
func Invitation(to, siteName, tempPassword, appURL string) Message {
	return render("invitation.txt", to, map[string]string{"Site": siteName, "Email": to, "Password": tempPassword, "URL": appURL})
}

// AdminInvitation invites a new admin account (a property manager, an
// installer) given role on a site: the portal's address and a temporary
// password, which they must replace at the first sign-in.
func AdminInvitation(to, siteName, role, tempPassword, portalURL string) Message {
	return render("admin_invitation.txt", to, map[string]string{"Site": siteName, "Role": role, "Email": to, "Password": tempPassword, "URL": portalURL})
}

// SiteAdded tells an existing app user that a site now appears in their app.
func SiteAdded(to, siteName string) Message {
	return render("site_added.txt", to, map[string]string{"Site": siteName})
}

// PasswordReset carries a single-use link to choose a new password.
func PasswordReset(to, resetURL string) Message {
	return render("password_reset.txt", to, map[string]string{"URL": resetURL, "Account": "app account"})
}

// AdminPasswordReset is PasswordReset for an admin portal account.
func AdminPasswordReset(to, resetURL string) Message {
	return render("password_reset.txt", to, map[string]string{"URL": resetURL, "Account": "admin portal account"})
}

// DoorOffline tells a site's manager that one of its door stations has
// been connected to nothing since since (shown in UTC), with the portal's
// address.
func DoorOffline(to, door, siteName string, since time.Time, portalURL string) Message {
	return render("door_offline.txt", to, map[string]string{"Door": door, "Site": siteName, "Since": utc(since), "URL": portalURL})
}

// DoorOnline tells a site's manager that a door station reported offline
// (since since) is connected again.
func DoorOnline(to, door, siteName string, since time.Time) Message {
	return render("door_online.txt", to, map[string]string{"Door": door, "Site": siteName, "Since": utc(since)})
}

// utc is how the messages show a time.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
