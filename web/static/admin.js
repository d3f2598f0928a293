// The admin portal: a client of the /v1 API. The session is an HttpOnly
// cookie; writes carry the session's CSRF token in X-CSRF-Token.
import { dateTime } from "/static/foyer.js";
import { passwordProblem } from "/static/password.js";

const $ = (id) => document.getElementById(id);
const state = { csrf: sessionStorage.getItem("foyer.csrf") || "", me: null, site: "", sites: [], users: [], people: new Map(), devices: [] };
window.foyerAdmin = state; // for tests and the curious

// request sends an API request and returns its response, or throws the
// API's error (with its code and Retry-After).
async function request(method, path, body, raw) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    if (raw) { opts.body = body; opts.headers["Content-Type"] = "text/csv"; }
    else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  }
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, opts);
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    const e = data.error || { message: res.statusText };
    // 401 means the session has ended, but for a password typed wrong
    // (bad_credentials): a sign-in's, or the current one when changing it.
    if (res.status === 401 && path !== "/v1/admin/login" && e.code !== "bad_credentials") showLogin();
    // A session from a temporary password may do nothing else.
    if (e.code === "password_change_required") showPasswordForm(true);
    const rows = (e.rows || []).slice(0, 5).map((r) => `row ${r.row}: ${r.message}`).join("; ");
    const err = new Error(e.message + (rows && !e.message.includes(rows) ? ` (${rows})` : ""));
    err.code = e.code;
    err.retryAfter = Number(res.headers.get("Retry-After")) || 0; // seconds, when locked (429) or busy
    throw err;
  }
  return res;
}

// api sends an API request and returns its decoded JSON answer (null for 204).
async function api(method, path, body, raw) {
  const res = await request(method, path, body, raw);
  if (res.status === 204) return null;
  return res.json().catch(() => ({}));
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

// guard runs an action, showing its error instead of throwing.
const guard = (fn) => async (ev) => {
  if (ev && ev.preventDefault) ev.preventDefault();
  showError(null);
  try { await fn(ev); } catch (err) { showError(err); }
};

function cell(text) { const td = document.createElement("td"); td.textContent = text ?? ""; return td; }
function button(label, fn) { const b = document.createElement("button"); b.textContent = label; b.onclick = guard(fn); return b; }
function fill(tbody, rows) { tbody.replaceChildren(...rows); }

function showLogin() {
  $("forgot").hidden = true;
  $("login").hidden = false; $("password").hidden = true; $("app").hidden = true; $("site").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  $("change-password").hidden = true; clearPasswords();
}

// showPasswordForm shows the form to choose a password. forced: signed in
// with an invitation's temporary password, nothing else is allowed, so the
// form is all there is and the current password is not asked; otherwise
// (Change password) it opens above the app and asks for the current one.
function showPasswordForm(forced) {
  const form = $("password");
  form.dataset.mode = forced ? "forced" : "change";
  $("pw-title").textContent = forced ? "Choose your password" : "Change password";
  $("pw-forced").hidden = !forced; $("pw-help").hidden = forced; $("pw-close").hidden = forced;
  $("pw-current-label").hidden = forced; $("pw-current").disabled = forced;
  $("pw-done").hidden = true;
  form.hidden = false;
  if (forced) { $("login").hidden = true; $("app").hidden = true; $("site").hidden = true; $("change-password").hidden = true; }
  $("logout").hidden = false;
}

// clearPasswords empties the password form's fields.
function clearPasswords() {
  for (const id of ["pw-current", "pw-new", "pw-repeat"]) $(id).value = "";
}

// passwordError is what a refused password change means to the admin.
function passwordError(err) {
  const again = err.retryAfter > 0 ? `Try again in ${err.retryAfter} s.` : "Try again later.";
  switch (err.code) {
    case "bad_credentials": return new Error("Your current password is wrong: the password was not changed.");
    case "invalid": return new Error(`The server refused the new password (${err.message.replace(/^invalid: /, "")}): choose another.`);
    case "too_many_attempts": return new Error(`Too many wrong passwords: this account's sign-ins and password changes are locked for now. ${again}`);
    default: return err;
  }
}

async function start() {
  try {
    const me = await api("GET", "/v1/admin/me");
    state.me = me.admin; state.csrf = me.csrf_token; sessionStorage.setItem("foyer.csrf", state.csrf);
  } catch (err) { if (err.code !== "password_change_required") showLogin(); return; }
  $("login").hidden = true; $("forgot").hidden = true; $("password").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("change-password").hidden = false;
  $("who").textContent = state.me.email;
  $("outbox-tab").hidden = !state.me.operator;
  $("backup-tab").hidden = !state.me.operator;
  $("accounts-tab").hidden = !state.me.operator;
  await loadSites();
}

async function loadSites(select) {
  const { sites } = await api("GET", "/v1/sites");
  state.sites = sites;
  const sel = $("site");
  sel.replaceChildren(...sites.map((s) => new Option(s.parent_id ? "  ↳ " + s.name : s.name, s.id)));
  sel.hidden = sites.length === 0;
  state.site = select || (sites.some((s) => s.id === state.site) ? state.site : sites[0]?.id || "");
  sel.value = state.site;
  await refresh();
}

async function refresh() {
  if (!state.site) { fill($("users").tBodies[0], []); return; }
  // Every list is asked for at once; codes and logs are shown once the
  // users and devices they name are in.
  $("l-user").value = ""; // a person of the site shown before
  state.people = new Map();
  const named = Promise.all([loadUsers(), loadDevices()]);
  await Promise.all([named, loadCodes(named), loadLogs(named), loadSite(), loadCallers(), loadAdmins()]);
}

// userName and deviceName name an ID of the site's users and devices as
// loaded (users: every one listed since the site was shown, whatever the
// users tab's filter now); an ID not among them (deleted since, or never
// listed) stays.
const userName = (id) => { const u = state.people.get(id); return u ? u.display_name || u.email : id; };
const deviceName = (id) => state.devices.find((d) => d.id === id)?.name || id;

const sitePath = (p = "") => `/v1/sites/${encodeURIComponent(state.site)}${p}`;

async function loadUsers() {
  const q = new URLSearchParams();
  if ($("u-filter").value) q.set("q", $("u-filter").value);
  if ($("u-status").value) q.set("status", $("u-status").value);
  const { users, total } = await api("GET", sitePath("/users?" + q));
  state.users = users;
  for (const u of users) state.people.set(u.id, u);
  fill($("users").tBodies[0], users.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.email = u.email;
    tr.append(cell(u.email), cell(u.number), cell(u.display_name), cell(u.licence), cell(u.status), cell(u.invitation));
    const actions = document.createElement("td");
    if (u.invitation !== "accepted") actions.append(button("Send invitation", async () => { await api("POST", sitePath(`/users/${u.id}/invitation`)); await loadUsers(); }));
    actions.append(button("Delete", async () => { if (confirm(`Remove ${u.email} from this site?`)) { await api("DELETE", sitePath(`/users/${u.id}`)); await loadUsers(); } }));
    tr.append(actions);
    return tr;
  }));
  $("users-total").textContent = `${users.length} shown of ${total}`;
  $("u-export").href = sitePath("/users/export");
  const sel = $("c-user");
  sel.replaceChildren(...users.map((u) => new Option(`${u.display_name} (${u.email})`, u.id)));
  // The Logs tab offers every user listed since the site was shown, so its
  // person stays chosen when the users listed are filtered.
  const person = $("l-user"), chosen = person.value;
  person.replaceChildren(new Option("everyone", ""), ...[...state.people.values()].map((u) => new Option(`${u.display_name} (${u.email})`, u.id)));
  person.value = chosen;
}

async function loadDevices() {
  const { devices } = await api("GET", sitePath("/devices"));
  state.devices = devices;
  const status = (d) => d.online === undefined ? "" : d.online ? "Online" : d.offline_since ? `Offline since ${dateTime(d.offline_since)}` : "Offline";
  const key = (d) => JSON.stringify([d.id, d.kind, d.name, d.number || ""]);
  const rows = $("devices").tBodies[0].rows;
  if (rows.length === devices.length && devices.every((d, i) => rows[i].dataset.key === key(d))) {
    // The same devices: only their status changes, the rows (and a click
    // on one of their buttons) stay.
    devices.forEach((d, i) => { rows[i].cells[4].textContent = status(d); });
    return;
  }
  fill($("devices").tBodies[0], devices.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.key = key(d);
    tr.append(cell(d.kind === "door_station" ? "Door station" : "Monitor"), cell(d.name), cell(d.number), cell(d.id), cell(status(d)));
    const actions = document.createElement("td");
    actions.append(
      button("New code", async () => { const p = await api("POST", sitePath(`/devices/${d.id}/provisioning`)); showCode(p); }),
      button("Revoke", async () => { if (confirm(`Revoke ${d.name}? It is disconnected at once.`)) { await api("DELETE", sitePath(`/devices/${d.id}`)); await loadDevices(); } }),
    );
    tr.append(actions);
    return tr;
  }));
  $("c-doors").replaceChildren(...devices.filter((d) => d.kind === "door_station").map((d) => new Option(d.name, d.id)));
}

function showCode(p) {
  $("d-code").hidden = false;
  $("d-code").textContent = `Provisioning code for ${p.device.name}: ${p.provisioning_code} (type it into the device; valid until ${new Date(p.expires).toLocaleString()})`;
}

// loadCodes and loadLogs show their lists once named (a promise of the
// users and devices being loaded, if any) settles.
async function loadCodes(named) {
  let codes = [];
  try { ({ codes } = await api("GET", sitePath("/codes"))); } catch { /* below the admin role */ }
  await named;
  const email = (id) => state.people.get(id)?.email || id;
  fill($("codes").tBodies[0], codes.map((c) => {
    const tr = document.createElement("tr");
    tr.append(cell(email(c.user) + (c.pass ? " (visitor pass)" : "")), cell(c.pin), cell(c.doors.map(deviceName).join(", ")), cell(c.one_time ? (c.used ? "used" : "yes") : ""));
    const actions = document.createElement("td");
    actions.append(button("Delete", async () => { await api("DELETE", sitePath(`/codes/${c.id}`)); await loadCodes(); }));
    tr.append(actions);
    return tr;
  }));
}

async function loadLogs(named) {
  const q = new URLSearchParams({ limit: "200" });
  if ($("l-from").value) q.set("from", $("l-from").value);
  if ($("l-to").value) q.set("to", $("l-to").value);
  if ($("l-user").value) q.set("user", $("l-user").value);
  const kind = $("l-kind").value;
  const { events } = await api("GET", sitePath(`/logs/${kind}?` + q));
  await named;
  fill($("logs").tBodies[0], events.map((e) => {
    const tr = document.createElement("tr");
    const details = e.details || (e.kind === "call" ? `${(e.devices || []).length} rung, ${e.answered_after_ms ? (e.answered_after_ms / 1000).toFixed(1) + " s to answer" : ""}${e.door_opened ? ", door opened" : ""}` : "");
    // An app device is not among the site's devices: its owner answered.
    const answered = e.answered && state.devices.some((d) => d.id === e.answered) ? deviceName(e.answered) : e.answered && e.user ? userName(e.user) : e.answered;
    tr.append(cell(new Date(e.time).toLocaleString()), cell(e.outcome), cell(e.actor ? deviceName(e.actor) : userName(e.user)),
      cell((e.people || []).map(userName).join(", ")), cell(deviceName(e.door)), cell(answered), cell(details));
    return tr;
  }));
  q.set("format", "csv"); q.delete("limit");
  $("l-csv").href = sitePath(`/logs/${kind}?` + q);
}

async function loadLive() {
  const { calls, unanswered_nodes: unanswered } = await api("GET", sitePath("/calls"));
  const notice = $("live-unanswered");
  notice.hidden = !unanswered;
  notice.textContent = unanswered ? `Server${unanswered.length > 1 ? "s" : ""} ${unanswered.join(", ")} did not answer in time: ` +
    "their calls are not shown." : "";
  const name = (id) => state.devices.find((d) => d.id === id)?.name || id;
  fill($("live").tBodies[0], calls.map((c) => {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(c.started).toLocaleTimeString()), cell(c.door_station_name), cell(c.number), cell(c.state),
      cell(String(c.ringing)), cell(c.answered_by ? name(c.answered_by) : ""));
    return tr;
  }));
}

// The live-calls tab refreshes itself while it is shown.
setInterval(() => { if (!$("tab-live").hidden && state.site) loadLive().catch(showError); }, 2000);

// The site form's fields and the settings they show.
const siteFields = { "s-ring": "ring_timeout_s", "s-limit": "call_time_limit_s", "s-door": "door_open_duration_s",
  "s-retention": "log_retention_days", "s-preview": "preview", "s-passes": "visitor_passes",
  "s-remote": "remote_open" };

// siteForm reads the site form: its name and settings.
function siteForm() {
  const settings = {};
  for (const [id, key] of Object.entries(siteFields)) {
    settings[key] = $(id).type === "checkbox" ? $(id).checked : +$(id).value;
  }
  return { name: $("s-name").value, settings };
}

async function loadSite() {
  const s = await api("GET", sitePath());
  $("s-name").value = s.name;
  for (const [id, key] of Object.entries(siteFields)) {
    if ($(id).type === "checkbox") $(id).checked = s.settings[key];
    else $(id).value = s.settings[key];
  }
  state.siteShown = siteForm();
}

// roleAtLeast reports whether the signed-in admin has role r or a higher one on the site shown.
const roles = ["viewer", "installer", "admin", "owner"];
const roleAtLeast = (r) => roles.indexOf(state.sites.find((s) => s.id === state.site)?.role) >= roles.indexOf(r);

// loadCallers lists the door stations of other sites that call this one;
// an admin may revoke one, which only takes this site out of its call sites.
async function loadCallers() {
  const { doors } = await api("GET", sitePath("/calling-doors"));
  fill($("callers").tBodies[0], doors.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    tr.append(cell(d.name), cell(d.site_name), cell(d.id));
    const actions = document.createElement("td");
    if (roleAtLeast("admin")) {
      actions.append(button("Revoke", async () => {
        if (!confirm(`Stop ${d.name} of ${d.site_name} calling this site? Only an installer of both sites can undo this.`)) return;
        // The list is read again either way: a door revoked or changed
        // meanwhile (the error says so) leaves it rather than staying with
        // a button that can only fail again.
        try { await api("DELETE", sitePath(`/calling-doors/${encodeURIComponent(d.id)}`)); }
        finally { await loadCallers().catch(() => {}); }
      }));
    }
    tr.append(actions);
    return tr;
  }));
  $("callers-none").hidden = doors.length > 0;
}

// loadAdmins lists who has a role on the site; an owner grants roles
// (inviting an address with no account), removes them and sends an
// invitation again.
async function loadAdmins() {
  const { admins } = await api("GET", sitePath("/admins"));
  const owner = roleAtLeast("owner");
  $("grant").hidden = !owner; $("a-help").hidden = !owner;
  fill($("admins").tBodies[0], admins.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.email = a.email;
    tr.append(cell(a.email), cell(a.role), cell(a.status));
    const actions = document.createElement("td");
    if (owner && a.role !== "owner") {
      if (a.status === "invited" || a.status === "expired") actions.append(button("Send invitation", async () => { noteInvitation(await api("POST", sitePath("/admins/invitation"), { email: a.email })); }));
      actions.append(button("Remove", async () => { if (confirm(`Remove ${a.email}'s role on this site?`)) { await api("PUT", sitePath("/admins"), { email: a.email, role: "" }); await loadAdmins(); } }));
    }
    tr.append(actions);
    return tr;
  }));
}

// noteInvitation says what became of an invitation e-mail.
function noteInvitation(inv) {
  $("a-note").hidden = !!inv.email_error;
  if (inv.email_error) { showError(new Error(`${inv.email} was invited as ${inv.role}, but ${inv.email_error}`)); return; }
  $("a-note").textContent = `${inv.email} was invited as ${inv.role}: an e-mail with a temporary password is on its way.`;
}

// downloadBackup fetches a copy of the whole store (operators only) and
// saves it under the name the server gives; an error (none on a deployment
// on Redis, the store not answering) is shown instead of being saved.
async function downloadBackup() {
  $("backup-done").hidden = true;
  const res = await request("GET", "/v1/backup");
  const blob = await res.blob();
  const name = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/)?.[1] || "foyer-backup.db";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  $("backup-done").textContent = `Saved ${name} (${Math.ceil(blob.size / 1024)} KiB).`;
  $("backup-done").hidden = false;
}

async function loadAccounts() {
  const { accounts } = await api("GET", "/v1/admin/accounts");
  fill($("accounts").tBodies[0], accounts.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.email = a.email;
    const roles = a.operator ? "operator" : a.roles.map((r) => `${r.site_name || r.site_id}: ${r.role}`).join(", ");
    tr.append(cell(a.email), cell(a.status), cell(roles));
    const actions = document.createElement("td");
    if (!a.operator) {
      actions.append(button("Delete", async () => {
        if (!confirm(`Delete the account of ${a.email}? Its sessions end and its roles on every site go.`)) return;
        await api("DELETE", `/v1/admin/accounts/${encodeURIComponent(a.id)}`);
        await loadAccounts();
      }));
    }
    tr.append(actions);
    return tr;
  }));
}

async function loadOutbox() {
  const { messages } = await api("GET", "/v1/outbox");
  fill($("outbox").tBodies[0], messages.map((m) => {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(m.date).toLocaleString()), cell(m.to), cell(m.subject));
    tr.onclick = guard(async () => {
      const res = await fetch(`/v1/outbox/${encodeURIComponent(m.name)}`, { credentials: "same-origin" });
      $("outbox-msg").textContent = await res.text(); $("outbox-msg").hidden = false;
    });
    return tr;
  }));
}

$("login").onsubmit = guard(async () => {
  const s = await api("POST", "/v1/admin/login", { email: $("login-email").value, password: $("login-password").value });
  state.csrf = s.csrf_token; sessionStorage.setItem("foyer.csrf", state.csrf);
  $("login-password").value = "";
  if (s.must_change_password) { $("pw-user").value = s.admin.email; showPasswordForm(true); return; }
  await start();
});
// Forgot password? swaps the sign-in form for one asking the e-mail
// address; the link is e-mailed to an account's address only, and the
// answer does not say whether there is one.
$("forgot-link").onclick = () => {
  showError(null);
  $("forgot-email").value = $("login-email").value;
  $("forgot-done").hidden = true;
  $("login").hidden = true; $("forgot").hidden = false;
  $("forgot-email").focus();
};
$("forgot").onsubmit = guard(async () => {
  const email = $("forgot-email").value.trim();
  $("forgot-done").hidden = true;
  if (!email) throw new Error("Type your account's e-mail address.");
  await api("POST", "/v1/admin/password/forgot", { email });
  $("forgot-done").textContent = `If ${email} is an admin account's address, a link to choose a new password was sent to it. Open it within an hour.`;
  $("forgot-done").hidden = false;
});
$("forgot-back").onclick = () => { showError(null); $("login-email").value = $("forgot-email").value; showLogin(); $("login-email").focus(); };
// The password form checks what was typed and sends nothing it would
// refuse; whatever the answer, the fields are emptied after sending.
$("password").onsubmit = guard(async () => {
  const forced = $("password").dataset.mode === "forced";
  $("pw-done").hidden = true;
  const body = { new_password: $("pw-new").value };
  if (!forced) {
    body.current_password = $("pw-current").value;
    if (!body.current_password) throw new Error("Type your current password.");
  }
  const problem = passwordProblem(body.new_password, $("pw-repeat").value);
  if (problem) throw new Error(problem);
  try { await api("POST", "/v1/admin/password", body); }
  catch (err) { throw passwordError(err); }
  finally { clearPasswords(); }
  if (forced) { await start(); return; }
  $("pw-done").textContent = "Password changed; your other sessions were signed out.";
  $("pw-done").hidden = false;
});
$("change-password").onclick = () => {
  showError(null);
  $("pw-user").value = state.me.email;
  clearPasswords();
  showPasswordForm(false);
  $("pw-current").focus();
};
$("pw-close").onclick = () => { clearPasswords(); $("pw-done").hidden = true; $("password").hidden = true; showError(null); };
$("logout").onclick = guard(async () => { await api("POST", "/v1/admin/logout"); sessionStorage.removeItem("foyer.csrf"); showLogin(); });
$("site").onchange = guard(async () => { state.site = $("site").value; await refresh(); });
document.querySelectorAll(".tabs button").forEach((b) => b.onclick = guard(async () => {
  document.querySelectorAll(".tabs button").forEach((x) => x.classList.toggle("on", x === b));
  document.querySelectorAll(".tab").forEach((t) => t.hidden = t.id !== "tab-" + b.dataset.tab);
  if (b.dataset.tab === "outbox") await loadOutbox();
  if (b.dataset.tab === "accounts") await loadAccounts();
  if (b.dataset.tab === "live") await loadLive();
  if (b.dataset.tab === "devices") await loadDevices(); // their status as of now
  if (b.dataset.tab === "logs") await loadLogs(); // the calls since
}));
$("backup-download").onclick = guard(downloadBackup);
$("add-user").onsubmit = guard(async () => {
  const u = await api("POST", sitePath("/users"), {
    email: $("u-email").value, number: $("u-number").value, display_name: $("u-name").value,
    licence: $("u-licence").value, send_invitation: $("u-invite").checked,
  });
  if (u.email_error) showError(new Error(u.email_error));
  $("add-user").reset();
  await loadUsers();
});
$("u-filter").oninput = guard(loadUsers);
$("u-status").onchange = guard(loadUsers);
$("u-import").onchange = guard(async () => {
  const f = $("u-import").files[0];
  if (!f) return;
  const r = await api("POST", sitePath("/users/import"), await f.text(), true);
  $("u-import").value = "";
  await loadUsers();
  showError(new Error(`Imported ${r.imported} users.`));
});
$("add-device").onsubmit = guard(async () => {
  const body = { kind: $("d-kind").value, name: $("d-name").value };
  if (body.kind === "monitor") body.number = $("d-number").value;
  showCode(await api("POST", sitePath("/devices"), body));
  $("add-device").reset();
  await loadDevices();
});
$("add-code").onsubmit = guard(async () => {
  await api("POST", sitePath("/codes"), {
    user_id: $("c-user").value, pin: $("c-pin").value, one_time: $("c-once").checked,
    doors: [...$("c-doors").selectedOptions].map((o) => o.value),
  });
  $("add-code").reset();
  await loadCodes();
});
["l-kind", "l-from", "l-to", "l-user"].forEach((id) => $(id).onchange = guard(loadLogs));
// Save sends only what was changed in the form: another manager's change
// to a field left alone since the form was shown is kept.
$("site-form").onsubmit = guard(async () => {
  const now = siteForm(), shown = state.siteShown, body = {};
  if (now.name !== shown.name) body.name = now.name;
  for (const key of Object.keys(now.settings)) {
    if (now.settings[key] !== shown.settings[key]) (body.settings ??= {})[key] = now.settings[key];
  }
  if (Object.keys(body).length) await api("PATCH", sitePath(), body);
  await loadSites(state.site);
});
$("grant").onsubmit = guard(async () => {
  $("a-note").hidden = true;
  const inv = await api("PUT", sitePath("/admins"), { email: $("a-email").value, role: $("a-role").value });
  if (inv) noteInvitation(inv); // 201: the address had no account and was invited
  $("grant").reset();
  await loadAdmins();
});
$("new-site").onsubmit = guard(async () => {
  const body = { name: $("ns-name").value };
  if ($("ns-sub").checked) body.parent_id = state.site;
  const s = await api("POST", "/v1/sites", body);
  $("new-site").reset();
  await loadSites(s.id);
});

start();
