package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
)

// maxImportRows is the most app users one CSV file may carry.
const maxImportRows = 10000

// CSV columns. Import needs the first three, takes licence and tags, and
// ignores status and invitation (export writes them; they follow from the
// person's account, not the file), so an export re-imports as it is.
var (
	csvColumns  = []string{"email", "call_id", "display_name", "licence", "tags", "status", "invitation"}
	csvRequired = []string{"email", "call_id", "display_name"}
)

// maxRowErrors bounds the errors reported for one file.
const maxRowErrors = 100

// importRow is one app user to put in a site.
type importRow struct {
	Row         int // 1-based line in the file, 0 when added by the JSON API
	Email       string
	Number      directory.Number
	DisplayName string
	Licence     directory.Licence // empty: a new member's is active, an existing member keeps theirs
	Tags        []string
	KeepTags    bool // the file has no tags column: an existing member keeps theirs
}

// rowErr names a row's error for the client.
func rowErr(row int, column, format string, args ...any) RowError {
	return RowError{Row: row, Column: column, Message: fmt.Sprintf(format, args...)}
}

// normalize checks a row's fields and tidies them; the error is a *Error
// naming the row's column.
func (r *importRow) normalize() error {
	fail := func(col, format string, args ...any) error {
		e := errInvalidField(format, args...)
		if r.Row > 0 {
			e.Rows = []RowError{rowErr(r.Row, col, format, args...)}
			e.Message = fmt.Sprintf("row %d: %s", r.Row, e.Message)
		}
		return e
	}
	e, err := accounts.NormalizeEmail(r.Email)
	if err != nil {
		return fail("email", "%q is not an e-mail address", r.Email)
	}
	r.Email = e
	if err := r.Number.Validate(); err != nil {
		return fail("call_id", "call ID %q: 1 to 6 digits", r.Number)
	}
	switch n := utf8.RuneCountInString(r.DisplayName); {
	case n == 0:
		return fail("display_name", "display name is empty")
	case n > directory.MaxNameLen:
		return fail("display_name", "display name longer than %d characters", directory.MaxNameLen)
	case strings.IndexFunc(r.DisplayName, unicode.IsControl) >= 0:
		return fail("display_name", "display name holds control characters")
	}
	if r.Licence != "" && r.Licence != directory.LicenceActive && r.Licence != directory.LicenceInactive {
		return fail("licence", "licence %q: want active or inactive", r.Licence)
	}
	tags, err := accounts.NormalizeTags(r.Tags)
	if err != nil {
		return fail("tags", "%s", strings.TrimPrefix(err.Error(), "invalid: "))
	}
	r.Tags = tags
	return nil
}

// plan is a batch of directory ops for rows, and what they yield.
type plan struct {
	ops     []directory.Op
	opRow   []int // the row of each op (0: not from a file)
	members []directory.Membership
	tags    map[directory.UserID][]string
}

// planRows turns rows into one directory batch. A row for a person already
// in the site is refused, or with update, changes their membership. New
// call IDs are created, named after their first row's display name.
func (a *API) planRows(ctx context.Context, s directory.Site, rows []importRow, update bool) (*plan, error) {
	existing, err := a.dir.SiteMembers(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	inSite := make(map[directory.UserID]directory.Membership, len(existing))
	for _, m := range existing {
		inSite[m.User] = m
	}
	entries, err := a.dir.Entries(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	haveEntry := make(map[directory.Number]bool, len(entries))
	for _, e := range entries {
		haveEntry[e.Number] = true
	}
	p := &plan{tags: make(map[directory.UserID][]string)}
	add := func(row int, op directory.Op) { p.ops = append(p.ops, op); p.opRow = append(p.opRow, row) }
	seen := make(map[string]int)
	var rowErrs []RowError
	for _, r := range rows {
		if first, dup := seen[r.Email]; dup {
			rowErrs = append(rowErrs, rowErr(r.Row, "email", "%s already appears in row %d", r.Email, first))
			continue
		}
		seen[r.Email] = r.Row
		m := directory.Membership{Site: s.ID, Number: r.Number, DisplayName: r.DisplayName, Licence: r.Licence, Status: directory.StatusPending}
		if m.Licence == "" {
			m.Licence = directory.LicenceActive
		}
		member := false
		u, err := a.dir.UserByEmail(ctx, r.Email)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			u = directory.User{ID: directory.UserID(directory.NewID("u_")), Email: r.Email}
			add(r.Row, directory.PutUser{User: u})
		case err != nil:
			return nil, err
		default:
			if old, ok := inSite[u.ID]; ok {
				if !update {
					e := apiErr(http.StatusConflict, "conflict", "%s is already an app user of this site", r.Email)
					return nil, e
				}
				m.Status, member = old.Status, true
				if r.Licence == "" { // a file without licences renames, it does not re-license
					m.Licence = old.Licence
				}
			} else if inv, err := a.invitationState(ctx, u.ID); err != nil {
				return nil, err
			} else if inv == invitationAccepted {
				m.Status = directory.StatusActive
			}
		}
		m.User = u.ID
		if !haveEntry[r.Number] {
			haveEntry[r.Number] = true
			add(r.Row, directory.PutEntry{Entry: directory.Entry{Site: s.ID, Number: r.Number, Name: r.DisplayName}})
		}
		add(r.Row, directory.PutMembership{Membership: m})
		p.members = append(p.members, m)
		if !member || !r.KeepTags {
			p.tags[u.ID] = r.Tags
		}
		if len(rowErrs) >= maxRowErrors {
			break
		}
	}
	if len(rowErrs) > 0 {
		return nil, rowsError(rowErrs)
	}
	return p, nil
}

func rowsError(rows []RowError) *Error {
	e := apiErr(http.StatusUnprocessableEntity, "invalid_rows", "%d row(s) are invalid; nothing was imported (first: row %d: %s)", len(rows), rows[0].Row, rows[0].Message)
	e.Rows = rows
	return e
}

// applyPlan commits the plan's batch (all or nothing), then its tags. A
// rule the batch breaks is reported against its row.
func (a *API) applyPlan(ctx context.Context, s directory.Site, p *plan) error {
	if err := a.dir.Apply(ctx, p.ops...); err != nil {
		var oe *directory.OpError
		if errors.As(err, &oe) && oe.Index < len(p.opRow) && p.opRow[oe.Index] > 0 {
			e := toError(oe.Err)
			e.Rows = []RowError{rowErr(p.opRow[oe.Index], "", "%s", oe.Err.Error())}
			e.Message = fmt.Sprintf("row %d: %s; nothing was imported", p.opRow[oe.Index], oe.Err.Error())
			return e
		}
		if oe != nil {
			return oe.Err
		}
		return err
	}
	return a.acc.SetTagsBatch(ctx, s.ID, p.tags)
}

// importUsers reads a CSV file (text/csv, UTF-8, a header row naming the columns)
// and puts every row's app user in the site, or none when any row is bad.
// Existing members are updated; members not in the file stay. No e-mail is
// sent: invitations go out from the user list.
func (a *API) importUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleAdmin)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/csv" {
		return apiErr(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the file as text/csv")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCSVBody))
	if err != nil {
		return err
	}
	rows, err := parseCSV(body)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pl, err := a.planRows(ctx, s, rows, true)
	if err != nil {
		return err
	}
	if err := a.applyPlan(ctx, s, pl); err != nil {
		return err
	}
	a.audit(ctx, p, s.ID, "user.import", fmt.Sprintf("%d rows", len(rows)))
	return ok(w, map[string]int{"imported": len(rows)})
}

// parseCSV reads and checks every row of an import file.
func parseCSV(body []byte) ([]importRow, error) {
	if !utf8.Valid(body) {
		line := 1 + bytes.Count(body[:firstInvalidUTF8(body)], []byte("\n"))
		return nil, rowsError([]RowError{rowErr(line, "", "the file is not UTF-8 text (save it as “CSV UTF-8”)")})
	}
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bytes.NewReader(body))
	cr.FieldsPerRecord = 0
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errBadRequest("the file is empty: it needs a header row (%s)", strings.Join(csvRequired, ","))
	}
	if err != nil {
		return nil, csvError(err)
	}
	col := make(map[string]int)
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(csvColumns, h) {
			return nil, rowsError([]RowError{rowErr(1, h, "unknown column %q (columns: %s)", h, strings.Join(csvColumns, ", "))})
		}
		if _, dup := col[h]; dup {
			return nil, rowsError([]RowError{rowErr(1, h, "column %q appears twice", h)})
		}
		col[h] = i
	}
	for _, h := range csvRequired {
		if _, ok := col[h]; !ok {
			return nil, rowsError([]RowError{rowErr(1, h, "missing column %q", h)})
		}
	}
	var rows []importRow
	var bad []RowError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rows) >= maxImportRows {
			return nil, rowsError([]RowError{rowErr(line, "", "more than %d rows; split the file", maxImportRows)})
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return unescapeCell(strings.TrimSpace(rec[i]))
			}
			return ""
		}
		_, hasTags := col["tags"]
		row := importRow{Row: line, Email: get("email"), Number: directory.Number(get("call_id")), DisplayName: get("display_name"), Licence: directory.Licence(get("licence")), KeepTags: !hasTags}
		if t := get("tags"); t != "" {
			row.Tags = strings.Split(t, ";")
		}
		if err := row.normalize(); err != nil {
			var e *Error
			if errors.As(err, &e) && len(bad) < maxRowErrors {
				bad = append(bad, e.Rows...)
			}
			continue
		}
		rows = append(rows, row)
	}
	if len(bad) > 0 {
		return nil, rowsError(bad)
	}
	if len(rows) == 0 {
		return nil, errBadRequest("the file has a header but no rows")
	}
	return rows, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return rowsError([]RowError{rowErr(pe.StartLine, "", "%s", pe.Err.Error())})
	}
	return errBadRequest("unreadable CSV: %s", err.Error())
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// Spreadsheets run cells starting with these as formulas (CSV injection);
// export prefixes such a cell with ' and import takes the prefix off.
const formulaStarts = "=+-@"

func escapeCell(s string) string {
	if s != "" && strings.ContainsRune(formulaStarts, rune(s[0])) {
		return "'" + s
	}
	return s
}

func unescapeCell(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune(formulaStarts, rune(s[1])) {
		return s[1:]
	}
	return s
}

// exportUsers writes a site's app users as CSV, the import format.
func (a *API) exportUsers(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	users, err := a.siteUsers(r.Context(), s)
	if err != nil {
		return err
	}
	return writeCSV(w, "app-users.csv", csvColumns, len(users), func(i int) []string {
		u := users[i]
		return []string{u.Email, string(u.Number), u.DisplayName, string(u.Licence), strings.Join(u.Tags, ";"), string(u.Status), u.Invitation}
	})
}

// writeCSV answers with a CSV download named filename: header, then the n
// records row returns, each cell escaped (escapeCell) so that a
// spreadsheet opening the file runs none of them as a formula.
func writeCSV(w http.ResponseWriter, filename string, header []string, n int, row func(i int) []string) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf) // into memory: its writes cannot fail
	_ = cw.Write(header)
	for i := range n {
		rec := row(i)
		for j := range rec {
			rec[j] = escapeCell(rec[j])
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	_, _ = w.Write(buf.Bytes())
	return nil
}
