// The password-reset page: the e-mailed link (PUBLIC_URL/reset#token=…,
// with &for=admin for an admin portal account) opens it. It takes the
// single-use token from the address's fragment, which browsers never send
// to a server, removes it from the address bar and history, asks for the
// new password twice, and spends the token with POST
// /v1/app/password/reset (docs/api.md, "App accounts"), or an admin's
// with POST /v1/admin/password/reset ("Admin sign-in").

import { passwordProblem } from "/static/password.js";

const $ = (id) => document.getElementById(id);

// state is what the page shows; tests read it as window.foyer.
// state.state: loading | no_token | ready | sending | done | expired |
// unknown | weak | limited | error
const state = { state: "loading", status: "" };
window.foyer = state;

// The token lives in this variable only: not in the address, history or
// storage. Reloading the page loses it; the link in the e-mail still works
// until it is spent.
let token = "";
// admin: the token is an admin portal account's (&for=admin).
let admin = false;

// show sets the page's state: its headline, whether the form is offered,
// and a problem to correct ("" for none).
function show(st, text, { form = false, problem = "", help = false, done = "" } = {}) {
  state.state = st;
  state.status = text;
  document.body.dataset.state = st;
  $("status").textContent = text;
  $("reset").hidden = !form;
  $("save").disabled = st === "sending";
  $("problem").textContent = problem;
  $("problem").hidden = !problem;
  $("help").hidden = !help || admin;
  $("help-admin").hidden = !help || !admin;
  $("portal").hidden = !(done && admin);
  $("done").textContent = done;
  $("done").hidden = !done;
}

// takeToken reads #token=… (and for=admin) from the address and removes
// it there, so that it stays neither in the address bar nor in the tab's
// history. It returns the token and whether it is an admin's.
function takeToken() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  const forAdmin = /(?:^#|&)for=admin(?:&|$)/.test(location.hash);
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!m) return { tok: "", forAdmin };
  try {
    return { tok: decodeURIComponent(m[1]).trim(), forAdmin };
  } catch {
    return { tok: "", forAdmin }; // mangled in transit: explained as a missing link
  }
}

function start() {
  const { tok, forAdmin } = takeToken();
  if (tok) { token = tok; admin = forAdmin; } else if (!token) admin = forAdmin;
  if (!token) {
    show("no_token", "This page needs the link from your password-reset e-mail.", { help: true,
      problem: "The link has no reset code in it. Open the link from the e-mail again, in full (if your mail program split it over two lines, copy both parts)." });
    return;
  }
  show("ready", admin ? "Choose a new password for your admin portal account." : "Choose a new password for your intercom app.", { form: true });
  $("pw1").focus();
}

async function submit(e) {
  e.preventDefault();
  if (state.state === "sending") return;
  const pw = $("pw1").value;
  const problem = passwordProblem(pw, $("pw2").value);
  if (problem) {
    show("ready", state.status, { form: true, problem });
    return;
  }
  show("sending", "Changing your password…", { form: true });
  let res;
  let body = {};
  try {
    res = await fetch(admin ? "/v1/admin/password/reset" : "/v1/app/password/reset", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, new_password: pw }),
      credentials: "omit",
      cache: "no-store",
    });
    if (res.status !== 204) body = await res.json().catch(() => ({}));
  } catch {
    show("error", "Your password was not changed.", { form: true,
      problem: "The server could not be reached. Check the connection and try again." });
    return;
  }
  answered(res, (body && body.error) || {});
}

// answered shows what the server's answer to the reset means.
function answered(res, err) {
  const retry = Number(res.headers.get("Retry-After")) || 0;
  const wait = retry > 0 ? `Wait ${retry} s and try again.` : "Wait a moment and try again.";
  switch (true) {
    case res.status === 204:
      token = "";
      $("pw1").value = $("pw2").value = "";
      show("done", "Done.", { done: admin ? "Password changed. Sign in to the admin portal with your new password; your other sessions were signed out."
        : "Password changed. Sign in in the app with your new password." });
      return;
    case res.status === 410:
      token = "";
      $("pw1").value = $("pw2").value = "";
      show("expired", "This link has expired or was already used.", { help: true });
      return;
    case res.status === 404:
      token = "";
      $("pw1").value = $("pw2").value = "";
      show("unknown", "This link is not valid, or was already used.", { help: true });
      return;
    case res.status === 422:
      show("weak", "Your password was not changed.", { form: true,
        problem: `The server refused this password: ${err.message || "it breaks the password rules"}. Choose another.` });
      return;
    case res.status === 429:
      show("limited", "Your password was not changed.", { form: true, problem: `Too many attempts. ${wait}` });
      return;
    case res.status >= 500:
      show("error", "Your password was not changed.", { form: true,
        problem: `The server could not change it just now (${res.status}${err.code ? " " + err.code : ""}). ${wait}` });
      return;
    default:
      show("error", "Your password was not changed.", { form: true,
        problem: `The server refused the request (${res.status}): ${err.message || res.statusText || "no reason given"}.` });
  }
}

$("reset").addEventListener("submit", submit);
// A second link pasted into this tab changes only the fragment: no reload.
window.addEventListener("hashchange", () => { if (location.hash) start(); });
start();
