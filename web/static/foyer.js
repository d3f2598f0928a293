// The foyer protocol v1 client shared by the door station and resident
// pages: the token, the signalling connection, and WebRTC helpers.

// token returns the device token: from the address (#token=…), which it
// then removes from the address bar and history, or from this tab's storage.
export function token() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    const tok = decodeURIComponent(m[1]);
    sessionStorage.setItem("foyer-token", tok);
    history.replaceState(null, "", location.pathname + location.search);
    return tok;
  }
  return sessionStorage.getItem("foyer-token");
}

// forgetToken drops a token the server refused.
export function forgetToken() {
  sessionStorage.removeItem("foyer-token");
}

// tokenForm wires the page's token form (#login, its input #tok):
// submitting it keeps the token for this tab and calls start with it. It
// returns login, which forgets the current token and shows the form again.
export function tokenForm(start) {
  const form = document.getElementById("login");
  const input = document.getElementById("tok");
  form.onsubmit = (e) => {
    e.preventDefault();
    const tok = input.value.trim();
    sessionStorage.setItem("foyer-token", tok);
    form.hidden = true;
    start(tok);
  };
  return () => {
    forgetToken();
    form.hidden = false;
    input.focus();
  };
}

// Close codes after which reconnecting with the same token cannot help
// (protocol.md §6): the text says what to do instead.
const final = {
  4001: "The token was refused. Enter a valid device token.",
  4003: "The server did not understand this client.",
  4004: "The server does not speak protocol v1.",
  4009: "This device connected from another window or app.",
  4010: "This device's token was replaced. Enter the new token.",
};

// openWait bounds a connection's handshake, from opening the WebSocket to
// the welcome: a browser sets no time limit of its own on a server that
// takes the connection and never answers (a stuck node, a proxy that lost
// its upstream), and the page would say "Connecting…" for ever.
const openWait = 10000;

// Signal is the connection to /v1/signal. It says hello, keeps the
// connection alive with pings, reconnects with backoff after a drop, and
// hands the handlers one message at a time, in order, awaiting each (so a
// candidate is never applied before the description it follows).
export class Signal {
  // handlers: message(m) for every message, up(welcome, pressed) after each
  // welcome (pressed: what press kept meanwhile, sent just before), down(text,
  // final) when the connection is lost, and waiting(text) when the wait
  // down announced changes (the network is back). The page's connection
  // indicator (#conn) says online or offline before up and down run.
  constructor(tok, handlers) {
    this.tok = tok;
    this.h = handlers;
    this.pressed = [];
    this.queue = Promise.resolve();
    this.retry = 0;
    // The backoff grows to 30 s over a long outage, longer than a call
    // rings: back on the network, the page connects soon instead.
    window.addEventListener("online", () => this.backOnline());
    this.open();
  }

  // backOnline connects within a second when a reconnect waits for its
  // backoff: a building's devices see their network come back together,
  // and a random delay spreads them.
  backOnline() {
    if (!this.timer || this.stopped) return;
    this.reconnectIn(Math.random());
    this.h.waiting("Back online. Reconnecting…");
  }

  // reconnectIn opens a new connection after wait seconds.
  reconnectIn(wait) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.open();
    }, wait * 1000);
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/signal`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "hello", version: 1, token: this.tok }));
    ws.onmessage = (e) => {
      this.heard = Date.now();
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === "pong") return;
      if (m.type === "welcome") this.welcomed(m);
      this.queue = this.queue.then(() => this.h.message(m)).catch((err) => {
        if (err.name === "AbortError") console.info("foyer:", m.type, err.message); // the call's media closed meanwhile
        else console.error("foyer:", m.type, err);
      });
    };
    ws.onclose = (e) => this.closed(ws, e.code);
    clearTimeout(this.opening);
    this.opening = setTimeout(() => this.dead(ws), openWait);
  }

  welcomed(m) {
    clearTimeout(this.opening);
    const every = (m.heartbeat_s || 20) * 1000;
    clearInterval(this.pinger);
    // The backoff starts over once a connection has lasted: a server that
    // welcomes and then closes at once is not hammered every second.
    clearTimeout(this.steady);
    this.steady = setTimeout(() => { this.retry = 0; }, 10000);
    this.heard = Date.now();
    this.pingAt = 0;
    // Browsers cannot see the server's WebSocket pings: send our own, and
    // take the connection for dead when nothing, not even the pong, came
    // back within an interval of the last (§7).
    const ws = this.ws;
    this.pinger = setInterval(() => {
      if (this.pingAt && this.heard < this.pingAt) {
        this.dead(ws);
        return;
      }
      this.pingAt = Date.now();
      this.send({ type: "ping" });
    }, every);
    const pressed = this.pressed;
    this.pressed = [];
    pressed.forEach((p) => this.send(p));
    showOnline(true);
    this.h.up(m, pressed);
  }

  // dead gives up on a silent connection now (nothing back within a ping's
  // interval, or no welcome within openWait): closing a dead link waits
  // for a closing handshake that never comes, for a minute or more, and an
  // answered call waits for us only a few seconds.
  dead(ws) {
    ws.onclose = ws.onmessage = null;
    ws.close(4000, "server silent");
    this.closed(ws, 4000);
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    clearTimeout(this.opening);
    clearInterval(this.pinger);
    clearTimeout(this.steady);
    const why = final[code];
    showOnline(false);
    if (why || this.stopped) {
      this.h.down(why || "Disconnected.", true);
      return;
    }
    // A node shutting down (4012) sends everyone away at once: a random
    // 0–5 s spreads them over the other nodes (§6).
    const wait = code === 4012 ? Math.random() * 5 : Math.min(30, 2 ** this.retry) * (0.75 + Math.random() / 2);
    this.retry++;
    this.h.down(`Connection lost. Reconnecting in ${Math.ceil(wait)} s…`, false);
    this.reconnectIn(wait);
  }

  // send sends one message; false when the connection is not open.
  send(m) {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(m));
    return true;
  }

  // press sends what a button asked for; offline, it keeps it and sends it
  // first thing once connected again (up gets it). False when it waits.
  press(m) {
    if (this.send(m)) return true;
    this.pressed.push(m);
    return false;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws.close();
  }
}

// showOnline sets the page's connection indicator.
function showOnline(up) {
  const conn = document.getElementById("conn");
  if (!conn) return;
  conn.textContent = up ? "online" : "offline";
  conn.classList.toggle("up", up);
}

// peer creates a call's RTCPeerConnection with the welcome's ICE servers
// and trickles its candidates; callId() names the call they belong to.
// Candidates wait until describe has sent their description (the server
// refuses them before it), and the end of candidates goes out as an empty
// candidate string.
export function peer(welcome, sig, callId) {
  const iceServers = (welcome.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
  const pc = new RTCPeerConnection({ iceServers });
  // Chromium never settles an operation still pending when the page closes
  // the connection (the WebRTC operations chain drops it), and the page's
  // message handlers run one at a time, awaiting each (Signal): one such
  // await would leave the page deaf to every later message. Once the page
  // closes the connection, what it awaits of it fails instead (whileOpen).
  let closing;
  pc.closed = new Promise((_, reject) => { closing = reject; });
  pc.closed.catch(() => {}); // nothing needs to wait for it
  for (const op of ["createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate"]) {
    const real = pc[op].bind(pc);
    pc[op] = (...args) => whileOpen(pc, real(...args));
  }
  const close = pc.close.bind(pc);
  pc.close = () => {
    close();
    closing(new DOMException("the call's media was closed", "AbortError"));
  };
  pc.held = [];
  pc.onicecandidate = (e) => {
    const m = { type: "candidate", call_id: callId(), candidate: e.candidate ? e.candidate.toJSON() : { candidate: "" } };
    if (pc.held) pc.held.push(m);
    else sig.send(m);
  };
  return pc;
}

// addCandidate applies one of the server's candidates; the empty one
// (end of candidates) needs nothing.
export async function addCandidate(pc, c) {
  if (!pc || !c || !c.candidate) return;
  try {
    await pc.addIceCandidate(c);
  } catch (err) {
    console.warn("foyer: candidate refused:", err.message);
  }
}

// describe sets a local description and sends it as an sdp message, then
// the candidates gathered meanwhile.
export async function describe(pc, sig, callId, desc) {
  await pc.setLocalDescription(desc);
  const d = pc.localDescription;
  sig.send({ type: "sdp", call_id: callId, description: { type: d.type, sdp: d.sdp } });
  const held = pc.held || [];
  pc.held = null;
  held.forEach((m) => sig.send(m));
}

// Rejoining an answered call after the connection dropped (protocol.md §4,
// Rejoining a call): the status shown meanwhile, and the ICE restart that
// takes the media over the network the page reconnected through. The
// restart's offer is itself a message about the call, so it rejoins too.
export const rejoining = "Connection lost: rejoining the call…";

export function restartIce(pc, sig, callId) {
  if (!pc) return Promise.resolve();
  return pc.createOffer({ iceRestart: true })
    .then((offer) => describe(pc, sig, callId, offer))
    .catch((err) => console.error("foyer: ICE restart:", err));
}

// whileOpen settles as p does, or fails once the page closes pc (one made
// by peer): for a media operation that is not pc's own, such as a sender's
// replaceTrack, which the close would leave pending too.
export function whileOpen(pc, p) {
  return Promise.race([p, pc.closed]);
}

// stopAll ends a call's local media.
export function stopAll(pc, stream) {
  if (pc) pc.close();
  if (stream) stream.getTracks().forEach((t) => t.stop());
}

// Why a call ended (ended.reason), in words.
export const endReasons = {
  hangup: "hung up",
  timeout: "the connection was lost",
  no_answer: "no answer",
  declined: "declined",
  unavailable: "nobody can be reached",
  failed: "the connection was lost",
  time_limit: "time limit reached",
};

// seconds formats a duration in milliseconds as m:ss.
export function seconds(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// dateTime formats a time (an API's RFC 3339 string) as the reader's
// locale writes a date and a time of day: "Dec 7, 2026, 9:30 PM".
export function dateTime(t) {
  return new Date(t).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// el builds an element: el("button", {className: "x", onclick}, "text").
export function el(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// hangsUp reports whether pressed (Signal.press, kept while offline) holds
// a hangup of callId: the call ends, rather than being rejoined.
export function hangsUp(pressed, callId) {
  return pressed.some((m) => m.type === "hangup" && m.call_id === callId);
}
