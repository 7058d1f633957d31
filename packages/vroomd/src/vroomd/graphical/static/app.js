// app.js: vroomd's page. The agent's screen scaled to the window, the modes,
// input forwarding (input.js), chat, commands, notifications and the agent's state.
//
// The token comes from the URL fragment (#token=..., never sent in a page
// request) or the token form, is kept for this tab only (sessionStorage),
// and goes to vroomd in the WebSocket URL's query (browsers cannot set an
// Authorization header on a WebSocket) or as a Bearer header on WebRTC's offer.
//
// `window.vroom` exposes the client and frame counters, for tests and benchmarks.

import { fit, GraphicalClient } from "/static/vroom.js";
import { InputForwarder } from "/static/input.js";

const $ = (id) => document.getElementById(id);
const stage = $("stage"), canvas = $("screen"), ctx = canvas.getContext("2d");
const rtcVideo = $("rtcvideo"), rtcAudio = $("rtcaudio");
const stats = { frames: 0, decoded: 0, dropped: 0, lastFrameAt: 0, bytes: 0 };
window.vroom = { stats, client: null, onframe: null, clipboard: null, path: null, pc: null };

// ------------------------------------------------------------ token

function takeToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const given = hash.get("token");
  if (given) {
    sessionStorage.setItem("vroomd-token", given);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem("vroomd-token");
}

// WebRTC first (the screen as H264 video, the agent's voice, the microphone),
// WebSocket after 10 s without an open DataChannel. The signaling POST
// carries the token as `Authorization: Bearer` (its URL has no query).
function rtcUrl() {
  return `webrtc+${location.protocol === "https:" ? "https" : "http"}://${location.host}/omux/vroom`;
}

function preparePeer(pc) {
  window.vroom.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  // sendrecv from the start, track-less until voice mode: no renegotiation later.
  window.vroom.mic = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
  pc.addEventListener("track", (e) => {
    const stream = new MediaStream([e.track]);
    if (e.track.kind === "video") rtcVideo.srcObject = stream;
    else rtcAudio.srcObject = stream;
  });
}

// Closing the peer connection tells vroomd at once (SCTP ABORT, DTLS
// close_notify); without it vroomd notices only when ICE consent expires (~30 s).
addEventListener("pagehide", () => { if (window.vroom.pc) window.vroom.pc.close(); });

async function useMicrophone(on) {
  const sender = window.vroom.mic;
  if (!sender || on === !!sender.track) return;
  if (!on) {
    sender.track.stop();
    await sender.replaceTrack(null);
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    await sender.replaceTrack(stream.getAudioTracks()[0]);
  } catch (e) {
    addLine($("notes"), "error", `no microphone: ${e.message}`);
  }
}

function wsUrl(token) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  return `${scheme}://${location.host}/omux/vroom${query}`;
}

// ------------------------------------------------------------ layout & video

function stageSize() {
  const r = stage.getBoundingClientRect();
  return { width: Math.max(1, Math.floor(r.width)), height: Math.max(1, Math.floor(r.height)) };
}

function layout(client) {
  const agent = client.agent;
  if (!agent) return;
  if (canvas.width !== agent.width || canvas.height !== agent.height) {
    canvas.width = agent.width;
    canvas.height = agent.height;
  }
  const box = fit(agent, stageSize());
  const style = { left: `${box.x}px`, top: `${box.y}px`, width: `${box.width}px`, height: `${box.height}px` };
  Object.assign(canvas.style, style);
  Object.assign(rtcVideo.style, style);
}

let pendingFrame = null;
let pendingArrival = 0;
let decoding = false;

function onFrame(bytes) {
  stats.frames++;
  stats.bytes += bytes.length;
  if (pendingFrame) stats.dropped++; // newest frame wins here too
  pendingFrame = bytes;
  pendingArrival = performance.now();
  if (!decoding) decodeLoop();
}

async function decodeLoop() {
  decoding = true;
  while (pendingFrame) {
    const bytes = pendingFrame;
    const arrival = pendingArrival;
    pendingFrame = null;
    try {
      const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }));
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      stats.decoded++;
      stats.lastFrameAt = performance.now();
      $("overlay").hidden = true;
      // (arrival: when the frame's bytes reached this page, for latency probes)
      if (window.vroom.onframe) window.vroom.onframe(ctx, arrival);
    } catch {
      // a damaged frame: the next one replaces it
    }
  }
  decoding = false;
}

// ------------------------------------------------------------ logs

function addLine(list, cls, text, extra) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  if (extra) li.append(extra);
  list.append(li);
  while (list.children.length > 200) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
  return li;
}

function dataView(data) {
  if (data == null) return null;
  if (typeof data === "object" && data.mime && data.bytes) {
    const img = document.createElement("img");
    img.alt = "screenshot";
    img.src = `data:${data.mime};base64,${data.bytes}`;
    return img;
  }
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(data, null, 1);
  return pre;
}

// ------------------------------------------------------------ commands typed in the box

function parseCommand(text) {
  if (!text.startsWith("/")) return ["natural", { text }];
  const raw = text.slice(1).trim();
  if (raw.startsWith("{")) {
    const { action, ...args } = JSON.parse(raw);
    return [action, args];
  }
  const [action, ...rest] = raw.split(/\s+/);
  const tail = raw.slice(action.length).trim();
  switch (action) {
    case "navigate": return [action, { url: tail }];
    case "click": case "hover": return [action, { selector: tail }];
    case "type": return [action, { selector: rest[0], text: tail.slice(rest[0].length).trim() }];
    case "scroll": return [action, { direction: rest[0] || "down", amount: Number(rest[1] || 300) }];
    case "wait": return [action, { selector: rest[0], state: rest[1] || "visible" }];
    case "select": return [action, { selector: rest[0], values: (rest[1] || "").split(",") }];
    case "evaluate": return [action, { expression: tail }];
    case "natural": return [action, { text: tail }];
    default: return [action, {}];
  }
}

// ------------------------------------------------------------ main

async function main() {
  const client = new GraphicalClient({ viewport: stageSize() });
  window.vroom.client = client;
  const forwarder = new InputForwarder(client, canvas);
  window.vroom.forwarder = forwarder;
  const status = $("status");

  client.addEventListener("handshake", () => {
    const path = client.session.kind === "webrtc" ? "WebRTC" : "WebSocket";
    window.vroom.path = path;
    document.body.classList.toggle("webrtc", path === "WebRTC");
    rtcVideo.hidden = path !== "WebRTC";
    if (path === "WebRTC") $("overlay").hidden = true;
    status.textContent = `connected · ${path}`;
    status.title = `connection: ${path}`;
    status.className = "status up";
    layout(client);
  });
  client.addEventListener("frame", (e) => onFrame(e.detail));
  client.addEventListener("mode", (e) => showMode(e.detail));
  client.addEventListener("inputready", () => forwarder.setEnabled(client.mode === "interact"));
  client.addEventListener("inputclosed", () => forwarder.setEnabled(false));
  client.addEventListener("state", (e) => {
    const s = e.detail;
    layout(client);
    const badge = $("agent-state");
    badge.textContent = s.loading ? `${s.state} (loading)` : s.state;
    badge.className = `agent-state ${s.state}`;
    if (s.url != null && document.activeElement !== $("url")) $("url").value = s.url;
    if (s.title != null) { $("title").textContent = s.title; document.title = `${s.title || "agent"} · vroom`; }
    const acting = client.mode !== "view";
    $("back").disabled = !(acting && s.browser && s.browser.canGoBack);
    $("forward").disabled = !(acting && s.browser && s.browser.canGoForward);
  });
  client.addEventListener("cursor", (e) => {
    const c = e.detail;
    const dot = $("pointer");
    if (client.mode === "interact") {
      canvas.style.cursor = c.visible === false ? "none" : c.type;
      dot.hidden = true;
    } else if (client.agent) {
      const r = canvas.getBoundingClientRect(), s = stage.getBoundingClientRect();
      dot.style.left = `${r.left - s.left + (c.x / client.agent.width) * r.width}px`;
      dot.style.top = `${r.top - s.top + (c.y / client.agent.height) * r.height}px`;
      dot.hidden = c.visible === false;
    }
  });
  client.addEventListener("notification", (e) => {
    const n = e.detail;
    const text = n.ref != null ? `[${n.ref}] ${n.text}` : n.text;
    addLine($("notes"), n.type || "info", text, dataView(n.data));
  });
  client.addEventListener("chat", (e) => addLine($("chat"), e.detail.role, e.detail.text));
  client.addEventListener("clipboard", (e) => {
    const text = e.detail.text || "";
    window.vroom.clipboard = text;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).catch(() => {
        addLine($("notes"), "info", `the agent copied ${text.length} characters (this browser would not take them)`);
      });
    }
  });
  client.addEventListener("close", (e) => {
    status.textContent = "disconnected";
    status.className = "status down";
    forwarder.setEnabled(false);
    $("overlay").hidden = false;
    $("overlay").textContent = `disconnected: ${e.detail.reason || e.detail.code}`;
    if (e.detail.code === 4000 && !client.handshake) askToken();
  });

  function showMode(mode) {
    for (const b of document.querySelectorAll(".modes button")) {
      b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    }
    document.body.classList.toggle("interact", mode === "interact");
    useMicrophone(mode === "voice");
    if (mode !== "interact") { canvas.style.cursor = "default"; forwarder.setEnabled(false); }
    else { $("pointer").hidden = true; canvas.focus({ preventScroll: true }); }
  }

  for (const b of document.querySelectorAll(".modes button")) {
    b.addEventListener("click", () => client.setMode(b.dataset.mode).catch(() => {}));
  }
  $("back").addEventListener("click", () => client.command("back"));
  $("forward").addEventListener("click", () => client.command("forward"));
  $("urlbar").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("url").value.trim();
    if (url) client.navigate(url).catch(() => {});
    canvas.focus({ preventScroll: true });
  });
  $("chatform").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("chatinput").value.trim();
    if (!text) return;
    $("chatinput").value = "";
    addLine($("chat"), "user", text);
    client.chat(text).catch(() => {});
  });
  $("commandform").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("commandinput").value.trim();
    if (!text) return;
    let action, args;
    try { [action, args] = parseCommand(text); } catch (err) {
      addLine($("notes"), "error", `bad command: ${err.message}`);
      return;
    }
    $("commandinput").value = "";
    client.command(action, args);
  });

  let resizeTimer = null;
  new ResizeObserver(() => {
    layout(client);
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (client.ready) client.resize(stageSize().width, stageSize().height).catch(() => {});
    }, 250);
  }).observe(stage);

  function askToken() {
    const form = $("tokenform");
    form.hidden = false;
    form.onsubmit = (e) => {
      e.preventDefault();
      sessionStorage.setItem("vroomd-token", $("token").value.trim());
      location.reload();
    };
  }

  try {
    const token = takeToken();
    // `?transport=ws` skips WebRTC (a network that drops UDP; benchmarks).
    if (new URLSearchParams(location.search).get("transport") === "ws") {
      await client.connect(wsUrl(token));
    } else {
      await client.connect(rtcUrl(), {
        token, bearer: true, fallback: wsUrl(token), rtcTimeout: 10, peerConnection: preparePeer,
      });
    }
  } catch (err) {
    status.textContent = "refused";
    status.className = "status down";
    $("overlay").textContent = `could not connect: ${err.message}`;
    if (err.code === 4000) askToken();
  }
}

main();
