package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// csvFile builds an import file of n app users on call IDs of up to six.
func csvFile(n int, row func(i int) string) string {
	var b strings.Builder
	b.WriteString("email,call_id,display_name,licence,tags\n")
	for i := range n {
		if row != nil {
			if r := row(i); r != "" {
				b.WriteString(r + "\n")
				continue
			}
		}
		fmt.Fprintf(&b, "user%05d@example.com,%d,Resident %d,active,floor-%d;block-a\n", i, 1000+i/6, i, i%10)
	}
	return b.String()
}

// TestImportExport: 10,000 rows import; the export re-imports into
// another site to the same state.
func TestImportExport(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	a, b := op.site("Block A"), op.site("Block B")

	var res struct{ Imported int }
	op.must(http.StatusOK, "POST", "/v1/sites/"+a+"/users/import", csvFile(10000, nil), &res)
	if res.Imported != 10000 {
		t.Fatalf("imported %d, want 10000", res.Imported)
	}
	var list struct {
		Users []struct{ Email, Number string }
		Total int
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+a+"/users?tag=floor-3", nil, &list)
	if list.Total != 10000 || len(list.Users) != 1000 {
		t.Fatalf("list: total %d, %d with tag floor-3; want 10000 and 1000", list.Total, len(list.Users))
	}
	if e.mail.count("user00000@example.com") != 0 {
		t.Error("an import sent e-mail; invitations go out from the user list")
	}

	_, exportA := op.do("GET", "/v1/sites/"+a+"/users/export", nil)
	op.must(http.StatusOK, "POST", "/v1/sites/"+b+"/users/import", string(exportA), &res)
	_, exportB := op.do("GET", "/v1/sites/"+b+"/users/export", nil)
	if string(exportA) != string(exportB) {
		t.Fatalf("the export of A imported into B exports differently:\nA: %.300s\nB: %.300s", exportA, exportB)
	}
	if n := strings.Count(string(exportA), "\n"); n != 10001 {
		t.Fatalf("export has %d lines, want a header and 10000 rows", n)
	}
	// Importing the same file again changes nothing.
	op.must(http.StatusOK, "POST", "/v1/sites/"+a+"/users/import", string(exportA), &res)
	_, again := op.do("GET", "/v1/sites/"+a+"/users/export", nil)
	if string(again) != string(exportA) {
		t.Fatal("re-importing the export changed the site")
	}
}

// TestImportAllOrNothing: one bad row applies nothing and is named.
func TestImportAllOrNothing(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Block C")
	cases := []struct {
		name, file, code string
		row              int
	}{
		{"bad email", csvFile(500, func(i int) string {
			if i == 321 {
				return "not-an-address,1,X,active,"
			}
			return ""
		}), "invalid_rows", 323},
		{"bad call ID", csvFile(50, func(i int) string {
			if i == 7 {
				return "x@example.com,12ab,X,active,"
			}
			return ""
		}), "invalid_rows", 9},
		{"seventh user on an ID", csvFile(6, nil) + "seventh@example.com,1000,Seven,active,\n", "limit", 8},
		{"duplicate e-mail", csvFile(3, nil) + "user00001@example.com,1,Dup,active,\n", "invalid_rows", 5},
		{"bad licence", csvFile(3, nil) + "l@example.com,1,L,maybe,\n", "invalid_rows", 5},
		{"unknown column", "email,call_id,display_name,colour\na@example.com,1,A,red\n", "invalid_rows", 1},
		{"missing column", "email,display_name\na@example.com,A\n", "invalid_rows", 1},
		{"not UTF-8", "email,call_id,display_name\na@example.com,1,Jos\xe9\n", "invalid_rows", 2},
		{"ragged row", "email,call_id,display_name\na@example.com,1\n", "invalid_rows", 2},
		{"too many rows", csvFile(10001, nil), "invalid_rows", 10002},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := op.do("POST", "/v1/sites/"+site+"/users/import", c.file)
			if status != http.StatusUnprocessableEntity && status != http.StatusConflict {
				t.Fatalf("status %d, want 422 or 409: %s", status, body)
			}
			if !strings.Contains(string(body), `"code":"`+c.code+`"`) || !strings.Contains(string(body), fmt.Sprintf(`"row":%d`, c.row)) {
				t.Fatalf("want code %s naming row %d; got %s", c.code, c.row, body)
			}
			var list struct{ Total int }
			op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/users", nil, &list)
			if list.Total != 0 {
				t.Fatalf("%d users applied from a rejected file", list.Total)
			}
			var entries struct{ Entries []any }
			op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/entries", nil, &entries)
			if len(entries.Entries) != 0 {
				t.Fatalf("%d call IDs created by a rejected file", len(entries.Entries))
			}
		})
	}
}

// TestImportKeepsWhatTheFileLacks: a file that only renames people keeps
// their licence and tags: no licence column (or an empty cell) is not
// "active", and no tags column is not "no tags". An empty tags cell, in a
// file that has the column, clears them.
func TestImportKeepsWhatTheFileLacks(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Rename Court")
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/import",
		"email,call_id,display_name,licence,tags\nr@example.com,1,Old Name,inactive,unpaid\n", nil)
	user := func() (string, string, []string) {
		var list struct {
			Users []struct {
				DisplayName string `json:"display_name"`
				Licence     string
				Tags        []string
			}
		}
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/users", nil, &list)
		if len(list.Users) != 1 {
			t.Fatalf("%d users", len(list.Users))
		}
		u := list.Users[0]
		return u.DisplayName, u.Licence, u.Tags
	}
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/import", "email,call_id,display_name\nr@example.com,1,New Name\n", nil)
	if name, licence, tags := user(); name != "New Name" || licence != "inactive" || len(tags) != 1 || tags[0] != "unpaid" {
		t.Fatalf("after a file of names only: %s, %s, %v; want New Name, inactive, [unpaid]", name, licence, tags)
	}
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/import", "email,call_id,display_name,licence,tags\nr@example.com,1,New Name,,\n", nil)
	if _, licence, tags := user(); licence != "inactive" || len(tags) != 0 {
		t.Fatalf("after empty licence and tags cells: %s, %v; want inactive, []", licence, tags)
	}
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/import", "email,call_id,display_name\nn@example.com,2,Newcomer\n", nil)
	var list struct {
		Users []struct{ Email, Licence string }
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/users?q=n@example.com", nil, &list)
	if len(list.Users) != 1 || list.Users[0].Licence != "active" {
		t.Fatalf("a newcomer without a licence column: %+v; want active", list.Users)
	}
}

// TestDownloadsEscapeFormulas: a cell a spreadsheet would run as a formula
// (CSV injection) is exported with a leading ', in the users' export and in
// a log's download alike, and the users' import takes the ' off again.
func TestDownloadsEscapeFormulas(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	a, b := op.site("Block A"), op.site("Block B")
	const formula = `=HYPERLINK("http://example.com")`
	op.must(http.StatusOK, "POST", "/v1/sites/"+a+"/users/import",
		"email,call_id,display_name\nf@example.com,1,"+`"`+strings.ReplaceAll(formula, `"`, `""`)+`"`+"\n", nil)
	_, export := op.do("GET", "/v1/sites/"+a+"/users/export", nil)
	if !strings.Contains(string(export), `"'=HYPERLINK(""http://example.com"")"`) {
		t.Fatalf("users export does not escape a formula:\n%s", export)
	}
	op.must(http.StatusOK, "POST", "/v1/sites/"+b+"/users/import", string(export), nil)
	var list struct {
		Users []struct {
			DisplayName string `json:"display_name"`
		}
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+b+"/users", nil, &list)
	if len(list.Users) != 1 || list.Users[0].DisplayName != formula {
		t.Fatalf("the export imported elsewhere: %+v, want the display name %s", list.Users, formula)
	}

	op.must(http.StatusCreated, "POST", "/v1/sites/"+a+"/api-keys", map[string]string{"name": "@SUM(1)", "role": "viewer"}, nil)
	_, audit := op.do("GET", "/v1/sites/"+a+"/logs/audit?format=csv", nil)
	if !strings.Contains(string(audit), ",'@SUM(1)\n") {
		t.Fatalf("audit log download does not escape a formula:\n%s", audit)
	}
}
