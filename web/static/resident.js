import { token, connect, iceServers, trickle, addCandidate } from "/static/foyer.js";

const $ = (id) => document.getElementById(id);
const state = { status: "connecting", callId: null, pc: null, welcome: null, answered: false };
window.foyer = state;
const show = (s) => { state.status = s; $("status").textContent = s; };
const reasons = { answered_elsewhere: "Answered on another device", declined_elsewhere: "Declined on another device", caller_hangup: "The visitor hung up", timeout: "Missed call" };
let sig, countdown;

function start(tok) { sig = connect(tok, onMessage, (code) => show(`Disconnected (${code})`)); }

function idle(text) {
  show(text);
  clearInterval(countdown);
  if (state.pc) state.pc.close();
  Object.assign(state, { pc: null, callId: null, answered: false });
  $("ringing").hidden = true; $("talking").hidden = true; $("caller").textContent = "";
  $("preview").srcObject = null;
}

async function onOffer(m) {
  let pc = state.pc;
  if (!pc) {
    pc = state.pc = new RTCPeerConnection({ iceServers: iceServers(state.welcome) });
    pc.ontrack = (e) => { const v = $("preview"); if (!v.srcObject) v.srcObject = new MediaStream(); v.srcObject.addTrack(e.track); };
    trickle(pc, sig, () => state.callId);
  }
  await pc.setRemoteDescription(m.description);
  const audio = pc.getTransceivers().find((t) => t.receiver.track && t.receiver.track.kind === "audio");
  if (audio && !audio.sender.track) {
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    await audio.sender.replaceTrack(mic.getAudioTracks()[0]);
    audio.direction = "sendrecv";
  }
  const answer = await pc.createAnswer();
  sig.send({ type: "sdp", call_id: m.call_id, description: { type: answer.type, sdp: answer.sdp } });
  await pc.setLocalDescription(answer);
}

async function onMessage(m) {
  switch (m.type) {
  case "welcome": state.welcome = m; show("Waiting for visitors"); break;
  case "ring": {
    state.callId = m.call_id;
    $("caller").textContent = `${m.from.name} — ${m.from.site_name} (${m.to})`;
    $("ringing").hidden = false;
    let left = Math.round(m.lifetime_ms / 1000);
    show(`Ringing… ${left} s`);
    clearInterval(countdown);
    countdown = setInterval(() => { if (--left >= 0 && !state.answered) show(`Ringing… ${left} s`); }, 1000);
    break;
  }
  case "sdp": if (m.description.type === "offer") await onOffer(m); else if (state.pc) await state.pc.setRemoteDescription(m.description); break;
  case "candidate": if (state.pc) await addCandidate(state.pc, m.candidate); break;
  case "answered":
    state.answered = true; clearInterval(countdown);
    show("Talking"); $("ringing").hidden = true; $("talking").hidden = false;
    $("preview").muted = false; $("preview").play().catch(() => {});
    break;
  case "cancel": idle(reasons[m.reason] || "Call over"); break;
  case "ended": idle(`Call ended: ${m.reason.replace("_", " ")} (${Math.round(m.duration_ms / 1000)} s)`); break;
  case "door_opened": show(`Door open for ${Math.round(m.duration_ms / 1000)} s`); break;
  case "error": show(`Error: ${m.message}`); break;
  }
}

$("answer").onclick = () => sig.send({ type: "answer", call_id: state.callId });
$("decline").onclick = () => { sig.send({ type: "decline", call_id: state.callId, scope: "device" }); idle("Declined"); };
$("declineAll").onclick = () => { sig.send({ type: "decline", call_id: state.callId, scope: "everyone" }); idle("Declined for everyone"); };
$("hangup").onclick = () => sig.send({ type: "hangup", call_id: state.callId });
$("open").onclick = () => sig.send({ type: "open_door", call_id: state.callId, relay: 1 });
const tok = token();
if (tok) start(tok); else { $("login").hidden = false; show("Enter this device's token"); }
$("login").onsubmit = (e) => { e.preventDefault(); sessionStorage.setItem("foyer-token", $("tok").value); $("login").hidden = true; start($("tok").value); };
