// The resident's account on the resident page: signing in with an e-mail
// address and password (which registers this browser as one of the
// person's app devices and connects it), the calls that were for the
// person, each as it ended for them, and their visitor passes. The
// session token stays in this tab (sessionStorage), as the device token
// does; the API is asked with it as a bearer token.
import { dateTime, el, seconds } from "/static/foyer.js";
import { passwordProblem } from "/static/password.js";

const $ = (id) => document.getElementById(id);
const sessionKey = "foyer-session";
const deviceKey = "foyer-device"; // this browser's device ID, when the page registered it

// account is what the page shows of the account; tests read it as
// window.foyer.account.
export const account = { signedIn: false, calls: [], sites: [], passes: [], doors: [], devices: [], error: "" };

// results say how a call ended for this person (GET /v1/app/calls).
// Answered elsewhere is not a missed call.
const results = {
  answered: (c) => `Answered on ${c.answered_by_name || "a device of yours"}` + (c.duration_ms > 0 ? ` · talked ${seconds(c.duration_ms)}` : ""),
  answered_elsewhere: () => "Answered on another device",
  declined: () => "Declined",
  declined_elsewhere: () => "Declined on another device",
  missed: () => "Missed call",
};

// validFor is what the pass form offers, in minutes. A week is the
// server's limit, measured on its clock: the longest choice stops five
// minutes short of it, so that a phone's clock a little ahead is not refused.
const validFor = [["1 hour", 60], ["1 day", 24 * 60], ["3 days", 3 * 24 * 60], ["7 days", 7 * 24 * 60 - 5]];

// api sends an API request with the session and returns its decoded JSON
// answer (null for 204), or throws the API's error. A 401 other than a
// wrong password means the session ended (signed out elsewhere, a
// password change): the account is put away, and the device stays connected.
async function api(method, path, body) {
  const opts = { method, headers: {} };
  const session = sessionStorage.getItem(sessionKey);
  if (session) opts.headers.Authorization = `Bearer ${session}`;
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || {};
    if (res.status === 401 && e.code !== "bad_credentials") putAway("You were signed out: sign in again to see your calls and passes.");
    const err = new Error(e.message || `${res.status} ${res.statusText}`);
    err.code = e.code;
    throw err;
  }
  return data;
}

function showError(err) {
  account.error = err ? String(err.message || err) : "";
  $("a-error").textContent = account.error;
  $("a-error").hidden = !err;
}

// guard runs a form's or button's action, showing its error instead of throwing.
const guard = (fn) => async (ev) => {
  if (ev && ev.preventDefault) ev.preventDefault();
  showError(null);
  try { await fn(ev); } catch (err) { showError(err); }
};

// signedIn reports whether this tab holds a session.
export function signedIn() { return sessionStorage.getItem(sessionKey) !== null; }

// showSignIn shows the account's sign-in form (beside the token form).
export function showSignIn() {
  $("account").hidden = false;
}

// accountForms wires the sign-in, new-password and pass forms and the
// sign-out button. connect starts the device's connection with a token.
export function accountForms(connect) {
  $("account").onsubmit = guard(async () => {
    const s = await api("POST", "/v1/app/login", { email: $("a-email").value.trim(), password: $("a-password").value });
    $("a-password").value = "";
    sessionStorage.setItem(sessionKey, s.token);
    $("account").hidden = true;
    if (s.must_change_password) { // a temporary password allows nothing else
      $("newpw").hidden = false;
      $("n-password").focus();
      return;
    }
    await register(connect);
  });
  $("newpw").onsubmit = guard(async () => {
    const pw = $("n-password").value;
    const problem = passwordProblem(pw, $("n-again").value);
    if (problem) throw new Error(problem);
    await api("POST", "/v1/app/password", { new_password: pw });
    $("n-password").value = $("n-again").value = "";
    $("newpw").hidden = true;
    await register(connect);
  });
  $("p-site").onchange = guard(loadPasses);
  $("p-valid").replaceChildren(...validFor.map(([text, min]) => el("option", { value: min, textContent: text, selected: min === 24 * 60 })));
  $("p-form").onsubmit = guard(makePass);
  $("h-more").onclick = guard(olderCalls);
  $("signout").onclick = guard(async () => {
    await api("POST", "/v1/app/logout").catch(() => {}); // signed out here whatever the server says
    sessionStorage.removeItem(sessionKey);
    sessionStorage.removeItem("foyer-token");
    sessionStorage.removeItem(deviceKey);
    location.reload(); // closes the connection; the page asks for a sign-in
  });
}

// register makes this browser one of the person's app devices (a name
// registered before gets a new token: the same device, signed in again),
// connects it and shows the account.
async function register(connect) {
  let d;
  try {
    d = await api("POST", "/v1/app/devices", { name: $("a-device").value.trim() });
  } catch (err) {
    $("account").hidden = false; // signed in, but no device: try again (another name, after removing one)
    if (err.code === "limit") await showAccount(); // the list of devices, to remove one
    throw err;
  }
  sessionStorage.setItem("foyer-token", d.token);
  sessionStorage.setItem(deviceKey, d.device.id);
  $("login").hidden = true;
  connect(d.token);
  await showAccount();
}

// showAccount shows the calls and passes of the signed-in person, and keeps
// them fresh: each minute and whenever the page is looked at again (calls
// this device did not ring, or rang while it was closed; passes used).
export async function showAccount() {
  account.signedIn = true;
  $("signout").hidden = false;
  if (!showAccount.refreshing) {
    const again = () => { if (!document.hidden && account.signedIn) refresh().catch(() => {}); };
    showAccount.refreshing = setInterval(again, 60_000);
    document.addEventListener("visibilitychange", again);
  }
  await guard(refresh)();
}

const refresh = () => Promise.all([loadCalls(), loadSites()]);

// putAway hides the account after its session ended.
function putAway(why) {
  if (!account.signedIn) return;
  account.signedIn = false;
  account.calls = [];
  sessionStorage.removeItem(sessionKey);
  $("history").hidden = $("passes").hidden = $("doors").hidden = $("devices").hidden = $("who").hidden = $("signout").hidden = true;
  $("account").hidden = false;
  setTimeout(() => showError(why));
}

// callOver is told when a call this device rang is over: the call reaches
// the history once the server has logged it (within tens of milliseconds),
// so the list is read a moment later, and once more in case it was slow.
export function callOver() {
  if (!account.signedIn) return;
  for (const ms of [400, 3000]) setTimeout(() => account.signedIn && loadCalls().catch(() => {}), ms);
}

// callsPage is how many calls the history shows at first, and adds with
// each "Show older calls".
const callsPage = 20;

// The history's reads run one at a time, each from what the one before
// showed: a refresh answered after "Show older calls" must not take the
// older calls away again.
let callsRead = Promise.resolve();
function oneAtATime(read) {
  const done = callsRead.then(read);
  callsRead = done.catch(() => {});
  return done;
}

// calls reads up to limit calls (before, when given) and whether there are
// more: one more is asked for, and not shown.
async function calls(limit, before) {
  const query = `limit=${limit + 1}` + (before ? `&before=${encodeURIComponent(before)}` : "");
  const { calls } = await api("GET", `/v1/app/calls?${query}`);
  return { page: calls.slice(0, limit), more: calls.length > limit };
}

// loadCalls reads the newest calls again, as many as are shown (at least a
// page, at most the API's 500 less the one asked for beyond).
const loadCalls = () => oneAtATime(async () => {
  const { page, more } = await calls(Math.min(499, Math.max(callsPage, account.calls.length)));
  showCalls(page, more);
});

// olderCalls adds the page of calls before the oldest shown.
const olderCalls = () => oneAtATime(async () => {
  const { page, more } = await calls(callsPage, account.calls[account.calls.length - 1].time);
  showCalls(account.calls.concat(page), more);
});

function showCalls(calls, more) {
  account.calls = calls;
  $("h-list").replaceChildren(...calls.map((c) => {
    const when = dateTime(c.time);
    const where = [when, c.door_name || "a door station", c.site_name].filter(Boolean).join(" · ");
    return el("li", { className: `item ${c.result}` },
      el("strong", { textContent: (results[c.result] || (() => c.result))(c) + (c.door_opened ? " · door opened" : "") }),
      el("span", { className: "help", textContent: where }));
  }));
  $("h-empty").hidden = calls.length > 0;
  $("h-more").hidden = !more;
  $("history").hidden = false;
}

// loadSites lists the sites where the person is rung: only there can they
// make visitor passes and open doors, each where the site allows it.
async function loadSites() {
  const me = await api("GET", "/v1/app/me");
  $("who").textContent = `Signed in as ${me.user.email}`;
  $("who").hidden = false;
  account.sites = me.sites.filter((s) => s.status === "active" && s.licence === "active");
  const passSites = account.sites.filter((s) => s.visitor_passes);
  const chosen = $("p-site").value;
  $("p-site").replaceChildren(...passSites.map((s) => el("option", { value: s.site_id, textContent: s.name, selected: s.site_id === chosen })));
  $("passes").hidden = passSites.length === 0;
  showDevices(me.devices);
  await Promise.all([loadDoors(), passSites.length > 0 && loadPasses()]);
}

// showDevices lists the person's app devices (phones, tablets, browsers
// signed in), each but this browser with a Remove button: a lost phone
// stops ringing, and a person at the limit of devices makes room.
function showDevices(devices) {
  devices.sort((a, b) => a.name.localeCompare(b.name));
  account.devices = devices;
  const mine = sessionStorage.getItem(deviceKey);
  $("v-list").replaceChildren(...devices.map((d) => el("li", { className: "item" },
    el("strong", { textContent: d.name }),
    el("span", { className: "help", textContent: d.id === mine ? "this browser" : d.online ? "online" : "offline" }),
    d.id === mine ? "" : el("button", { type: "button", className: "quiet small", textContent: "Remove", onclick: guard(async () => {
      if (!confirm(`Remove ${d.name}? It stops ringing, and signs in again to come back.`)) return;
      await api("DELETE", `/v1/app/devices/${encodeURIComponent(d.id)}`);
      await loadSites();
    }) }))));
  $("devices").hidden = devices.length === 0;
}

// loadDoors lists the door stations the person may open from here, those
// of the sites that allow it (remote_open), each with an Open button while
// it is connected.
async function loadDoors() {
  const lists = await Promise.all(account.sites.filter((s) => s.remote_open).map(async (s) => {
    const { doors } = await api("GET", `/v1/app/sites/${encodeURIComponent(s.site_id)}/doors`);
    return doors.map((d) => ({ ...d, site: s }));
  }));
  account.doors = lists.flat();
  $("d-list").replaceChildren(...account.doors.map((d) => el("li", { className: "item" },
    el("strong", { textContent: d.name }),
    el("span", { className: "help", textContent: `${d.site.name} · ${d.online ? "online" : "offline"}` }),
    el("button", { type: "button", className: "quiet small", textContent: "Open", disabled: !d.online, onclick: guard(() => openDoor(d)) }))));
  $("doors").hidden = account.doors.length === 0;
}

async function openDoor(d) {
  const r = await api("POST", `/v1/app/sites/${encodeURIComponent(d.site.site_id)}/doors/${encodeURIComponent(d.id)}/open`);
  $("d-opened").textContent = `${d.name} is open for ${Math.round(r.duration_ms / 1000)} s`;
  $("d-opened").hidden = false;
  clearTimeout(openDoor.timer);
  openDoor.timer = setTimeout(() => { $("d-opened").hidden = true; }, r.duration_ms);
}

async function loadPasses() {
  const site = $("p-site").value;
  const { passes } = await api("GET", `/v1/app/sites/${encodeURIComponent(site)}/passes`);
  account.passes = passes;
  $("p-list").replaceChildren(...passes.map((p) => {
    const use = p.used ? "used" : p.one_time ? "opens once" : "opens any number of times";
    const until = dateTime(p.valid_until);
    return el("li", { className: "item" },
      el("strong", { className: "pin", textContent: p.pin }),
      el("span", { className: "help", textContent: [p.label, use, `until ${until}`].filter(Boolean).join(" · ") }),
      el("button", { type: "button", className: "quiet small", textContent: "Delete", onclick: guard(async () => {
        await api("DELETE", `/v1/app/sites/${encodeURIComponent(site)}/passes/${encodeURIComponent(p.id)}`);
        $("p-made").hidden = true;
        await loadPasses();
      }) }));
  }));
}

async function makePass() {
  const site = $("p-site").value;
  const until = new Date(Date.now() + Number($("p-valid").value) * 60_000);
  const { pass } = await api("POST", `/v1/app/sites/${encodeURIComponent(site)}/passes`,
    { label: $("p-label").value.trim(), one_time: $("p-once").checked, valid_until: until.toISOString() });
  $("p-label").value = "";
  $("p-made").textContent = `New pass: ${pass.pin}. Give your visitor this PIN to type at the door station's keypad.`;
  $("p-made").hidden = false;
  await loadPasses();
}
