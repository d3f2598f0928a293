import { token, connect, iceServers, trickle, addCandidate } from "/static/foyer.js";

const $ = (id) => document.getElementById(id);
const state = { status: "connecting", callId: null, pc: null, welcome: null };
window.foyer = state;
const show = (s) => { state.status = s; $("status").textContent = s; };
let dial = "";

function keypad() {
  for (const k of ["1","2","3","4","5","6","7","8","9","⌫","0","✓"]) {
    const b = document.createElement("button");
    b.className = "key"; b.textContent = k;
    b.onclick = () => { if (k === "⌫") dial = dial.slice(0, -1); else if (k === "✓") call(dial); else if (dial.length < 6) dial += k; $("dial").textContent = dial; };
    $("keypad").append(b);
  }
}

let sig;
function start(tok) {
  sig = connect(tok, onMessage, (code) => show(`Disconnected (${code})`));
}

function call(to) {
  if (!to || state.callId) return;
  show(`Calling ${to}…`);
  sig.send({ type: "call", to });
}

async function media(callId) {
  const pc = new RTCPeerConnection({ iceServers: iceServers(state.welcome) });
  state.pc = pc;
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  $("self").srcObject = stream;
  for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: t.kind === "audio" ? "sendrecv" : "sendonly", streams: [stream] });
  pc.ontrack = (e) => { $("remote").srcObject = e.streams[0] || new MediaStream([e.track]); };
  const offer = await pc.createOffer();
  sig.send({ type: "sdp", call_id: callId, description: { type: offer.type, sdp: offer.sdp } });
  trickle(pc, sig, () => state.callId);
  await pc.setLocalDescription(offer);
}

function endCall(text) {
  show(text);
  if (state.pc) state.pc.close();
  state.pc = null; state.callId = null;
  $("hangup").hidden = true; $("call").hidden = false;
}

async function onMessage(m) {
  switch (m.type) {
  case "welcome": state.welcome = m; show("Ready: dial a number or pick a name"); break;
  case "directory":
    $("directory").replaceChildren(...m.entries.map((e) => { const b = document.createElement("button"); b.textContent = `${e.call_id}  ${e.name}`; b.onclick = () => call(e.call_id); return b; }));
    break;
  case "calling": state.callId = m.call_id; show(`Ringing ${m.ringing} device(s)…`); $("hangup").hidden = false; $("call").hidden = true; await media(m.call_id); break;
  case "answered": show(`Answered by ${m.by.name}`); break;
  case "sdp": if (state.pc) await state.pc.setRemoteDescription(m.description); break;
  case "candidate": if (state.pc) await addCandidate(state.pc, m.candidate); break;
  case "unlock": show(`Door open for ${Math.round(m.duration_ms / 1000)} s`); break;
  case "ended": endCall(`Call ended: ${m.reason.replace("_", " ")}`); break;
  case "error": show(`Error: ${m.message}`); if (!state.pc) state.callId = null; break;
  }
}

$("call").onclick = () => call(dial);
$("hangup").onclick = () => state.callId && sig.send({ type: "hangup", call_id: state.callId });
keypad();
const tok = token();
if (tok) start(tok); else { $("login").hidden = false; show("Enter this door station's token"); }
$("login").onsubmit = (e) => { e.preventDefault(); sessionStorage.setItem("foyer-token", $("tok").value); $("login").hidden = true; start($("tok").value); };
