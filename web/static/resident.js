// The resident: rings with the visitor's live picture, answers (the
// microphone opens only then), declines, opens the door, hangs up. Signed
// in with the resident's account (account.js) rather than a device token,
// it also lists the calls that were for them and makes visitor passes.
import { token, tokenForm, Signal, peer, addCandidate, describe, stopAll, whileOpen, endReasons, seconds, el, rejoining, restartIce, hangsUp } from "/static/foyer.js";
import { account, accountForms, callOver, showAccount, showSignIn, signedIn } from "/static/account.js";

const $ = (id) => document.getElementById(id);

// state is what the page shows; tests read it as window.foyer.
// state.state: connecting | idle | ringing | answering | talking | ended | offline
// state.reanswered: answer was sent again after a reconnect, and the media
// set up while ringing is kept (restartIce once answered).
const state = { state: "connecting", status: "", callId: null, doorId: null, caller: "", pc: null, mic: null, welcome: null, reanswered: false, account };
window.foyer = state;

// Why this device stopped ringing (cancel.reason). Answered elsewhere is
// not a missed call.
const cancelReasons = {
  answered_elsewhere: "Answered on another device",
  declined_elsewhere: "Declined on another device",
  caller_hangup: "Missed call: the visitor left",
  timeout: "Missed call",
};

let sig = null;
let declined = null; // the call declined while offline: its ring again on reconnecting is ignored
let ringTimer = 0;
let noticeTimer = 0;

function show(st, text) {
  state.state = st;
  state.status = text;
  $("status").textContent = text;
  $("callview").hidden = !["ringing", "answering", "talking"].includes(st);
  $("ringing").hidden = !["ringing", "answering"].includes(st);
  $("talking").hidden = st !== "talking";
  $("answer").disabled = st === "answering";
  // Once answered, a decline would be ignored by the server (the call goes on).
  $("decline").disabled = $("declineAll").disabled = st === "answering";
  document.body.dataset.state = st;
}

function notice(text) {
  clearTimeout(noticeTimer);
  $("notice").textContent = text;
  $("notice").hidden = false;
  noticeTimer = setTimeout(() => { $("notice").hidden = true; }, 8000);
}

// finish drops the call's media and shows why it is over.
function finish(st, text) {
  if (state.callId) callOver();
  clearInterval(ringTimer);
  stopAll(state.pc, state.mic);
  Object.assign(state, { pc: null, mic: null, callId: null, doorId: null, reanswered: false });
  $("remote").srcObject = null;
  $("remote").muted = true;
  $("countdown").textContent = "";
  show(st, text);
}

function ring(m) {
  if (m.call_id === declined) return; // our decline is on its way
  if (state.callId && state.callId !== m.call_id) {
    if (state.state !== "ringing" || m.from.door_station_id !== state.doorId) {
      // One call at a time: this device is busy with another.
      sig.send({ type: "decline", call_id: m.call_id, scope: "device" });
      return;
    }
    // The door station that rings us calls again: it has one call at a
    // time, so the earlier one is over (it restarted). In a cluster that
    // call's cancel can come after this ring (protocol §3, ring).
    finish("idle", "Waiting for visitors");
  }
  if (state.callId === m.call_id && state.pc) { // rung again after a reconnect: a new offer follows
    stopAll(state.pc, null);
    state.pc = null;
  }
  const answering = state.callId === m.call_id && state.state === "answering"; // our answer went again on reconnecting
  if (answering) state.reanswered = false; // the new offer sets up the media afresh
  state.callId = m.call_id;
  state.doorId = m.from.door_station_id;
  state.caller = m.from.name;
  $("caller").replaceChildren(
    el("strong", { textContent: m.from.name }),
    el("span", { textContent: ` · ${m.from.site_name} · ${m.to}` }));
  $("nopreview").hidden = m.preview;
  const until = Date.now() + m.lifetime_ms;
  const tick = () => {
    const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    $("countdown").textContent = `Ringing · ${left} s`;
  };
  clearInterval(ringTimer);
  tick();
  ringTimer = setInterval(tick, 1000);
  if (answering) show("answering", "Answering…");
  else show("ringing", `${m.from.name} is calling`);
}

// offer answers the server's offer: the visitor's video (and, after the
// answer, audio) in; a send slot for our microphone, filled on Answer.
async function offer(m) {
  if (m.call_id !== state.callId) return;
  let pc = state.pc;
  if (!pc) {
    const callId = m.call_id;
    pc = state.pc = peer(state.welcome, sig, () => callId);
    const remote = new MediaStream();
    $("remote").srcObject = remote;
    pc.ontrack = (e) => {
      remote.addTrack(e.track);
      $("remote").play().catch((err) => console.warn("foyer: remote video:", err.message));
    };
    pc.onconnectionstatechange = () => console.info("foyer: media", pc.connectionState);
  }
  await pc.setRemoteDescription(m.description);
  const audio = micSlot(pc);
  if (audio) {
    audio.direction = "sendrecv";
    if (state.mic) await whileOpen(pc, audio.sender.replaceTrack(state.mic.getAudioTracks()[0]));
  }
  await describe(pc, sig, m.call_id, await pc.createAnswer());
}

function micSlot(pc) {
  return pc && pc.getTransceivers().find((t) => t.mid !== null && t.receiver.track.kind === "audio");
}

// openMic puts the microphone on the call. The visitor hears nothing
// before the answer: the track goes out only now.
async function openMic(callId) {
  if (state.mic) { // answered before, and the answer was refused: it is open already
    const audio = micSlot(state.pc);
    if (audio) await audio.sender.replaceTrack(state.mic.getAudioTracks()[0]);
    return;
  }
  let mic;
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    console.error("foyer: microphone:", err);
    notice(`The microphone is unavailable (${err.name}): the visitor cannot hear you`);
    return;
  }
  if (state.callId !== callId) { // over meanwhile
    stopAll(null, mic);
    return;
  }
  state.mic = mic;
  const audio = micSlot(state.pc);
  if (audio) await audio.sender.replaceTrack(mic.getAudioTracks()[0]);
}

async function onMessage(m) {
  const mine = m.call_id === state.callId;
  switch (m.type) {
  case "ring":
    ring(m);
    break;
  case "sdp":
    if (m.description.type === "offer") await offer(m);
    else if (mine && state.pc) await state.pc.setRemoteDescription(m.description);
    break;
  case "candidate":
    if (mine) await addCandidate(state.pc, m.candidate);
    break;
  case "answered":
    if (!mine) return;
    clearInterval(ringTimer);
    $("countdown").textContent = "";
    $("nopreview").hidden = true; // the visitor's picture comes now, preview or not
    $("remote").muted = false;
    $("remote").play().catch((err) => console.warn("foyer: remote audio:", err.message));
    show("talking", `Talking to ${state.caller}`);
    if (state.reanswered) {
      state.reanswered = false;
      restartIce(state.pc, sig, state.callId);
    }
    break;
  case "cancel":
    if (mine) finish("ended", cancelReasons[m.reason] || "The call is over");
    break;
  case "ended":
    if (mine) {
      const talk = m.duration_ms > 0 ? ` after ${seconds(m.duration_ms)}` : "";
      finish("ended", `Call ended: ${endReasons[m.reason] || m.reason}${talk}`);
    }
    break;
  case "door_opened":
    notice(`Door open for ${Math.round(m.duration_ms / 1000)} s`);
    break;
  case "error":
    console.warn("foyer: error", m.code, m.message);
    if (m.code === "call_ended" || m.code === "not_found") {
      if (mine) finish("ended", "The call is over");
    } else if (m.code === "call_taken" && mine) {
      // Our answer came after another device's: its cancel may have been
      // lost with a dropped connection.
      finish("ended", cancelReasons.answered_elsewhere);
    } else {
      if (state.state === "answering") show("ringing", `${state.caller} is calling`);
      notice(m.message);
    }
    break;
  }
}

function start(tok) {
  $("account").hidden = true;
  if (sig) { // signed in again: the new token replaces the connection, quietly
    sig.h = { message() {}, up() {}, down() {}, waiting() {} };
    sig.stop();
  }
  sig = window.foyerSignal = new Signal(tok, { // tests drop the connection through window.foyerSignal
    message: onMessage,
    up: (welcome, pressed) => {
      state.welcome = welcome;
      if (hangsUp(pressed, state.callId)) return; // ended follows, or call_ended: do not rejoin
      if (state.state === "talking") rejoin();
      else if (state.state === "answering") reanswer();
      else if (state.state === "ringing") {
        // It may have stopped ringing while we were away (cancels are not
        // resent): if it still rings, the server rings us again now.
        finish("idle", "Waiting for visitors");
      } else if (!state.callId) show("idle", "Waiting for visitors");
    },
    down: (text, final) => {
      // A ringing device is rung again when it reconnects. The call we
      // talk in waits for us a few seconds (the server's rejoin window),
      // unless this device cannot reconnect; so does one we answered
      // whose answered was lost with the connection, if ours won.
      if ((state.state === "talking" || state.state === "answering") && !final) {
        show(state.state, rejoining);
        return;
      }
      if (state.state === "talking" || state.state === "answering" || (final && state.state === "ringing")) {
        finish("ended", "Call ended: the connection was lost");
      } else if (state.pc) { stopAll(state.pc, null); state.pc = null; }
      if (state.state !== "ringing") show(final ? "offline" : "connecting", text);
      if (final && /token/.test(text)) {
        login();
        showSignIn();
      }
    },
    waiting: (text) => {
      if (state.state === "connecting") show("connecting", text);
    },
  });
}

// rejoin takes the call up again through a new connection: answer again
// (answered follows), then restart ICE.
function rejoin() {
  sig.send({ type: "answer", call_id: state.callId });
  restartIce(state.pc, sig, state.callId);
}

// reanswer sends our answer again after a reconnect: the first may not
// have arrived, or its answered may have been lost. Whichever it was, the
// server says: answered (ours won: then restart ICE, as rejoin does),
// call_taken (another device's won), call_ended; or the call still rings,
// and this device, rung again, answers it now.
function reanswer() {
  state.reanswered = true;
  sig.send({ type: "answer", call_id: state.callId });
}

const login = tokenForm(start);
$("answer").onclick = () => {
  if (state.state !== "ringing") return;
  const callId = state.callId;
  show("answering", "Answering…");
  sig.send({ type: "answer", call_id: callId });
  openMic(callId);
};
// decline stops this device ringing (scope device) or the call (everyone);
// offline, it goes once connected again.
function decline(scope, text) {
  if (state.state !== "ringing") return;
  if (!sig.press({ type: "decline", call_id: state.callId, scope })) declined = state.callId;
  finish("ended", text);
}
$("decline").onclick = () => decline("device", "Declined");
$("declineAll").onclick = () => decline("everyone", "Declined for everyone");
$("hangup").onclick = () => {
  if (state.callId && !sig.press({ type: "hangup", call_id: state.callId })) show(state.state, "Hanging up…");
};
$("open").onclick = () => state.callId && sig.send({ type: "open_door", call_id: state.callId, relay: 1 });

accountForms(start);
const tok = token();
if (tok) {
  start(tok);
  if (signedIn()) showAccount();
} else {
  show("offline", "Sign in, or enter this device's token, to connect");
  showSignIn();
  login();
}
