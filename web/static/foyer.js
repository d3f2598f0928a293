// foyer protocol v1 client shared by the door station and resident pages.
export function token() {
  const m = location.hash.match(/token=([^&]+)/);
  return m ? decodeURIComponent(m[1]) : sessionStorage.getItem("foyer-token");
}

// connect opens /v1/signal, says hello and calls onMessage for every message.
export function connect(tok, onMessage, onClose) {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/signal`);
  ws.onopen = () => ws.send(JSON.stringify({ type: "hello", version: 1, token: tok }));
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = (e) => onClose && onClose(e.code, e.reason);
  return { send: (m) => ws.readyState === 1 && ws.send(JSON.stringify(m)), ws };
}

// iceServers maps welcome.ice_servers to RTCConfiguration.iceServers.
export function iceServers(welcome) {
  return (welcome.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
}

// trickle sends our candidates for a call once its description is out.
export function trickle(pc, sig, callId) {
  pc.onicecandidate = (e) => sig.send({ type: "candidate", call_id: callId(), candidate: e.candidate ? e.candidate.toJSON() : { candidate: "" } });
}

export async function addCandidate(pc, c) {
  if (c && c.candidate) await pc.addIceCandidate(c);
}
