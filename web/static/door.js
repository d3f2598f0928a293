// The door station: dial an ID (keypad or directory), send the camera and
// microphone, hear the resident who answers, show the door opening; or
// open the door with an access code typed on the keypad.
import { token, tokenForm, Signal, peer, addCandidate, describe, stopAll, endReasons, seconds, el, rejoining, restartIce, hangsUp } from "/static/foyer.js";

const $ = (id) => document.getElementById(id);

// state is what the page shows; tests read it as window.foyer.
// state.state: connecting | ready | dialing | ringing | talking | ended | offline
const state = { state: "connecting", status: "", callId: null, pc: null, stream: null, welcome: null, answeredBy: "" };
window.foyer = state;

let sig = null;
let dial = "";
let hangupWanted = false; // Hang up pressed before the call had an ID
let callRef = null; // the ref of our last call message: its calling, ended (unavailable) or error carries it
let calls = 0;
let codeMode = false; // the keypad takes an access code (shown as dots), sent by Open
let pinRef = null; // the ref of our last pin message: its error carries it
let pins = 0;
let unlockTimer = 0;

function show(st, text) {
  state.state = st;
  state.status = text;
  $("status").textContent = text;
  const inCall = ["dialing", "ringing", "talking"].includes(st);
  $("callview").hidden = !inCall;
  $("dialer").hidden = inCall;
  document.body.dataset.state = st;
}

function setDial(v) {
  dial = v;
  $("dial").value = codeMode ? "" : v;
  $("dial").textContent = codeMode ? "•".repeat(v.length) || "Code" : v || "—";
}

// setCodeMode switches the keypad between dialling an ID and typing an
// access code: the code's digits show as dots, and Call becomes Open.
function setCodeMode(on) {
  codeMode = on;
  $("keypad").querySelector('[data-key="Call"]').textContent = on ? "Open" : "Call";
  $("code").textContent = on ? "Cancel the code" : "Enter a code";
  setDial("");
}

function keypad() {
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "Call"];
  for (const k of keys) {
    const b = el("button", { type: "button", className: "key", textContent: k });
    b.dataset.key = k;
    if (k === "⌫") b.setAttribute("aria-label", "Delete");
    if (k === "Call") b.classList.add("answer");
    b.onclick = () => press(k);
    $("keypad").append(b);
  }
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement) return;
    if (/^[0-9]$/.test(e.key)) press(e.key);
    else if (e.key === "Backspace") press("⌫");
    else if (e.key === "Enter") press("Call");
  });
}

function press(k) {
  if (state.state !== "ready" && state.state !== "ended") return;
  if (k === "⌫") setDial(dial.slice(0, -1));
  else if (k === "Call" && codeMode) sendCode();
  else if (k === "Call") call(dial);
  else if (dial.length < (codeMode ? 8 : 6)) setDial(dial + k); // the longest access code, the longest call ID
}

// sendCode asks the server whether the code typed opens this door: unlock
// or an error (wrong code, keypad locked) comes back.
function sendCode() {
  if (!dial) return;
  pinRef = `pin${++pins}`;
  if (!sig.send({ type: "pin", code: dial, ref: pinRef })) {
    show(state.state, "Not connected: try again in a moment");
    return;
  }
  setCodeMode(false);
  show(state.state, "Checking the code…");
}

// call places a call to an ID (of site, when a directory entry names one:
// the same ID can be listed for several sites). The camera and microphone
// are taken first, so that the call's messages never wait behind the
// browser's permission prompt.
async function call(to, site) {
  if (!to || !sig || (state.state !== "ready" && state.state !== "ended")) return;
  if (codeMode) setCodeMode(false); // a name pressed while typing a code
  hangupWanted = false;
  state.callId = null;
  show("dialing", `Calling ${to}…`);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    console.error("foyer: camera/microphone:", err);
    show("ended", `Cannot call: the camera or microphone is unavailable (${err.name})`);
    return;
  }
  if (state.state !== "dialing" || hangupWanted) { // hung up, or the connection lost, meanwhile
    stopAll(null, stream);
    if (state.state === "dialing") endCall("Call cancelled");
    return;
  }
  state.stream = stream;
  $("self").srcObject = stream;
  callRef = `call-${++calls}`;
  const m = { type: "call", to, ref: callRef };
  if (site) m.site_id = site;
  if (!sig.send(m)) endCall("Not connected. Try again in a moment.");
}

// media starts the call's media: camera and microphone out, the answering
// resident's microphone in.
async function media(callId) {
  const stream = state.stream;
  if (!stream || state.callId !== callId) return; // hung up meanwhile
  const pc = peer(state.welcome, sig, () => callId);
  state.pc = pc;
  for (const t of stream.getTracks()) {
    pc.addTransceiver(t, { direction: t.kind === "audio" ? "sendrecv" : "sendonly", streams: [stream] });
  }
  pc.ontrack = (e) => {
    if (e.track.kind !== "audio") return;
    $("remote").srcObject = new MediaStream([e.track]);
    $("remote").play().catch((err) => console.warn("foyer: remote audio:", err.message));
  };
  pc.onconnectionstatechange = () => console.info("foyer: media", pc.connectionState);
  await describe(pc, sig, callId, await pc.createOffer());
}

function endCall(text) {
  stopAll(state.pc, state.stream);
  Object.assign(state, { pc: null, stream: null, callId: null });
  $("self").srcObject = null;
  $("remote").srcObject = null;
  setDial("");
  show("ended", text);
}

function showUnlock(ms) {
  clearInterval(unlockTimer);
  let left = Math.round(ms / 1000);
  const b = $("unlock");
  const tick = () => {
    if (left <= 0) {
      clearInterval(unlockTimer);
      b.hidden = true;
      return;
    }
    b.textContent = `Door open for ${left} s`;
    b.hidden = false;
    left--;
  };
  tick();
  unlockTimer = setInterval(tick, 1000);
}

async function onMessage(m) {
  const mine = m.call_id === state.callId;
  switch (m.type) {
  case "directory":
    $("directory").replaceChildren(...m.entries.map((e) => el("li", {},
      el("button", { type: "button", className: "entry", onclick: () => call(e.call_id, e.site_id) },
        el("span", { className: "name", textContent: e.name }),
        el("span", { className: "id", textContent: e.call_id })))));
    break;
  case "calling":
    if (state.state !== "dialing" || m.ref !== callRef) return;
    state.callId = m.call_id;
    if (hangupWanted) {
      sig.send({ type: "hangup", call_id: m.call_id });
      return;
    }
    show("ringing", `Calling… ${m.ringing} ${m.ringing === 1 ? "device rings" : "devices ring"}`);
    await media(m.call_id);
    break;
  case "answered":
    if (mine) {
      state.answeredBy = m.by.name;
      show("talking", `Answered by ${m.by.name}`);
    }
    break;
  case "sdp":
    if (mine && state.pc && m.description.type === "answer") await state.pc.setRemoteDescription(m.description);
    break;
  case "candidate":
    if (mine) await addCandidate(state.pc, m.candidate);
    break;
  case "unlock":
    showUnlock(m.duration_ms);
    if (!m.call_id && !state.callId) show(state.state, "Come in: the door is open");
    break;
  case "ended":
    // An ended without our call ID answers a call that never started
    // (unavailable): it carries our call message's ref.
    if (mine || (state.state === "dialing" && !state.callId && m.ref === callRef)) {
      const talk = m.duration_ms > 0 ? ` after ${seconds(m.duration_ms)}` : "";
      endCall(`Call ended: ${endReasons[m.reason] || m.reason}${talk}`);
    }
    break;
  case "error":
    console.warn("foyer: error", m.code, m.message);
    if (m.ref && m.ref === pinRef) show(state.state, m.code === "not_found" ? "Wrong code" : m.message);
    else if (state.state === "dialing" && !state.callId && m.ref === callRef) endCall(`Cannot call: ${m.message}`);
    else if (m.code === "call_ended" || m.code === "not_found") { if (mine) endCall("Call ended"); }
    else $("status").textContent = `${state.status} (${m.message})`;
    break;
  }
}

// rejoin takes the answered call up again through a new connection: the
// ICE restart's offer tells the server the door station is back.
async function rejoin() {
  const callId = state.callId;
  await restartIce(state.pc, sig, callId);
  if (state.callId === callId) show("talking", `Answered by ${state.answeredBy}`);
}

function start(tok) {
  sig = window.foyerSignal = new Signal(tok, { // tests drop the connection through window.foyerSignal
    message: onMessage,
    up: (welcome, pressed) => {
      state.welcome = welcome;
      if (hangsUp(pressed, state.callId)) return; // ended follows, or call_ended: do not rejoin
      if (state.state === "talking") rejoin();
      else show("ready", "Press a name, or dial a number and press Call");
    },
    down: (text, final) => {
      // An answered call waits for us a few seconds (the server's rejoin
      // window), unless this door station cannot reconnect; a ringing one
      // ends with the connection.
      if (state.state === "talking" && !final) {
        show("talking", rejoining);
        return;
      }
      if (state.callId || state.state === "dialing") endCall(`Call ended: the connection was lost`);
      show(final ? "offline" : "connecting", text);
      if (final && /token/.test(text)) login();
    },
    waiting: (text) => {
      if (state.state === "connecting") show("connecting", text);
    },
  });
}

const login = tokenForm(start);
$("hangup").onclick = () => {
  if (!state.callId) hangupWanted = true;
  else if (!sig.press({ type: "hangup", call_id: state.callId })) show(state.state, "Hanging up…");
};

keypad();
$("code").onclick = () => { if (state.state === "ready" || state.state === "ended") setCodeMode(!codeMode); };
setDial("");
const tok = token();
if (tok) start(tok);
else {
  show("offline", "Enter this door station's token to connect");
  login();
}
