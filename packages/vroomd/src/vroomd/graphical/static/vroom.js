// vroom.js: a VROOM-Graphical 0.1 client over openmux.js (WebSocket path).
//
// The browser twin of vroom_graphical.GraphicalClient: the handshake, modes,
// control messages and packed input of docs/protocol/graphical.md. Control
// messages are JSON (accepted by every server; the page has no CBOR codec and
// JSON.parse is native); pointer/button input is the packed binary layout,
// byte-identical to what a WebRTC client sends, so moving input to WebRTC
// DataChannels later changes only the transport under `openmux.js`.
//
//   const client = new GraphicalClient({ viewport: { width, height } });
//   client.addEventListener("state", (e) => ...);   // e.detail = STATE body
//   await client.connect("ws://127.0.0.1:8022/omux/vroom", { token });
//   await client.setMode("interact");                 // opens pointer + button
//   client.mouseDown(x, y, 0);

import { connect } from "/static/openmux.js";

export const VERSION = "0.1.0";
export const CONTROL = "vroom.graphical.control";

export const Msg = Object.freeze({
  HANDSHAKE: 0x80, MODE: 0x81, RESIZE: 0x82, CLIPBOARD: 0x83, NAVIGATE: 0x84, COMMAND: 0x85,
  PASTE: 0x86, CURSOR: 0x90, STATE: 0x91, NOTIFICATION: 0x92, CHAT: 0x93,
});
export const Input = Object.freeze({
  MOUSE_MOVE: 0x01, MOUSE_MOVE_REL: 0x02, SCROLL: 0x03, MOUSE_DOWN: 0x10, MOUSE_UP: 0x11,
  KEY_DOWN: 0x12, KEY_UP: 0x13, TOUCH_START: 0x14, TOUCH_MOVE: 0x15, TOUCH_END: 0x16,
});
export const Modifier = Object.freeze({ SHIFT: 1, CTRL: 2, ALT: 4, META: 8, CAPS_LOCK: 16 });
export const VIDEO_FRAME = 0x01;
export const CAPABILITIES = ["pointer", "keyboard", "touch", "clipboard", "command", "cursor"];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// ------------------------------------------------------------ packed input

const u16 = (v) => Math.min(0xffff, Math.max(0, Math.floor(v)));
const i16 = (v) => Math.min(0x7fff, Math.max(-0x8000, Math.round(v)));

export function packXY(x, y) {
  const b = new Uint8Array(4);
  const v = new DataView(b.buffer);
  v.setUint16(0, u16(x)); v.setUint16(2, u16(y));
  return b;
}
export function packDelta(dx, dy) {
  const b = new Uint8Array(4);
  const v = new DataView(b.buffer);
  v.setInt16(0, i16(dx)); v.setInt16(2, i16(dy));
  return b;
}
export function packButton(x, y, button) {
  const b = new Uint8Array(5);
  const v = new DataView(b.buffer);
  v.setUint16(0, u16(x)); v.setUint16(2, u16(y)); b[4] = button;
  return b;
}
export function packKey(key, code, modifiers) {
  const k = encoder.encode(key).slice(0, 255);
  const c = encoder.encode(code || "").slice(0, 255);
  const b = new Uint8Array(3 + k.length + c.length);
  b[0] = k.length; b.set(k, 1);
  b[1 + k.length] = c.length; b.set(c, 2 + k.length);
  b[2 + k.length + c.length] = modifiers & 0x1f;
  return b;
}
export function packTouch(id, x, y, pressure) {
  const b = new Uint8Array(6);
  const v = new DataView(b.buffer);
  b[0] = id & 0xff; v.setUint16(1, u16(x)); v.setUint16(3, u16(y)); b[5] = pressure & 0xff;
  return b;
}

/** DOM event -> the modifier byte (bit0 Shift, bit1 Ctrl, bit2 Alt, bit3 Meta, bit4 CapsLock). */
export function modifiersOf(e) {
  let m = 0;
  if (e.shiftKey) m |= Modifier.SHIFT;
  if (e.ctrlKey) m |= Modifier.CTRL;
  if (e.altKey) m |= Modifier.ALT;
  if (e.metaKey) m |= Modifier.META;
  if (e.getModifierState && e.getModifierState("CapsLock")) m |= Modifier.CAPS_LOCK;
  return m;
}

// ------------------------------------------------------------ scaling (§7)

/** Where an agent picture of `agent` size sits in a `box` (object-fit: contain). */
export function fit(agent, box) {
  const scale = Math.min(box.width / agent.width, box.height / agent.height);
  const width = agent.width * scale, height = agent.height * scale;
  return { x: (box.width - width) / 2, y: (box.height - height) / 2, width, height, scale };
}

/** A point on the client's picture -> agent pixels: floor(x / cw * aw), clamped. */
export function toAgent(x, y, client, agent) {
  const ax = Math.floor((x / client.width) * agent.width);
  const ay = Math.floor((y / client.height) * agent.height);
  return [
    Math.min(Math.max(ax, 0), Math.ceil(agent.width) - 1),
    Math.min(Math.max(ay, 0), Math.ceil(agent.height) - 1),
  ];
}

export function deltaToAgent(dx, dy, client, agent) {
  return [i16((dx / client.width) * agent.width), i16((dy / client.height) * agent.height)];
}

// ------------------------------------------------------------ the client

/**
 * Events (CustomEvent, `detail` is the message body unless said otherwise):
 * handshake, state, mode (detail: mode), cursor, notification, chat, clipboard,
 * frame (detail: Uint8Array JPEG), inputready, inputclosed, close (detail: {code, reason}).
 */
export class GraphicalClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.viewport = options.viewport || { width: 1280, height: 720 };
    this.capabilities = options.capabilities || CAPABILITIES;
    this.video = options.video !== false;
    this.session = null;
    this.control = null;
    this.pointer = null;
    this.button = null;
    this.handshake = null;
    this.agent = null; // { width, height }: what input coordinates are relative to
    this.mode = "view"; // the mode the server confirmed
    this.requestedMode = "view";
    this.state = null;
    this.pending = new Map(); // COMMAND id -> {resolve, reject}
    this._nextId = 1;
    this._opening = null;
  }

  get ready() { return this.handshake !== null && this.session !== null && this.session.isOpen; }
  get inputReady() { return !!(this.pointer && this.button && !this.pointer.closed && !this.button.closed); }

  /** `url`: ws(s):// or webrtc+http(s):// (then `transport` may hold openmux.js's
   * fallback, rtcTimeout, bearer and peerConnection options). Over WebRTC the
   * screen is a media track, so the JPEG `video` channel is only opened when
   * the session ended up on WebSocket. */
  async connect(url, { token = null, timeout = 10, ...transport } = {}) {
    const channels = [{ name: CONTROL }];
    if (this.video && !/^webrtc\+/i.test(url)) channels.push({ name: "video" });
    this.session = await connect(url, { token, channels, timeout, ...transport });
    this.session.closed.then(() => this._closed(this.session.closeCode, this.session.closeReason));
    const handshake = new Promise((resolve, reject) => { this._handshakeWaiter = { resolve, reject }; });
    this.control = this._channel(CONTROL);
    if (!this.control) this.control = await this.session.openChannel(CONTROL);
    const control = this.control;
    (async () => {
      for await (const m of control) this._onControl(m.type, m.data);
      this._closed(4000, control.closeReason || "the graphical session was closed");
    })();
    let video = this._channel("video");
    if (!video && this.video && this.session.kind !== "webrtc") video = await this.session.openChannel("video");
    if (video) {
      (async () => {
        for await (const m of video) if (m.type === VIDEO_FRAME) this._emit("frame", m.data);
      })();
    }
    const hello = {
      version: VERSION,
      control_encoding: ["json"],
      capabilities: this.capabilities,
      viewport: { width: Math.round(this.viewport.width), height: Math.round(this.viewport.height),
        scale: 1, pixelRatio: window.devicePixelRatio || 1 },
      mode: "view",
      client: { name: "vroomd-page", version: VERSION, platform: navigator.platform || "web" },
    };
    await this._send(Msg.HANDSHAKE, hello);
    return handshake;
  }

  _channel(name) { return this.session.channels.get(name) || null; }

  async close() {
    if (this.session) await this.session.close();
  }

  // -- control messages out

  async _send(type, body) {
    if (!this.control || this.control.closed) throw new Error("the graphical session is closed");
    await this.control.send(type, encoder.encode(JSON.stringify(body)));
  }

  async setMode(mode) {
    this.requestedMode = mode;
    if (mode !== "interact") this._closeInput();
    await this._send(Msg.MODE, { mode });
  }

  resize(width, height) {
    return this._send(Msg.RESIZE, { width: Math.round(width), height: Math.round(height),
      scale: 1, pixelRatio: window.devicePixelRatio || 1 });
  }

  navigate(url, newTab = false) { return this._send(Msg.NAVIGATE, { url, newTab }); }
  paste(text) { return this._send(Msg.PASTE, { text }); }
  chat(text) { return this._send(Msg.CHAT, { role: "user", text, timestamp: Date.now() }); }
  clipboard(direction, text) {
    const body = { direction };
    if (text != null) body.text = text;
    return this._send(Msg.CLIPBOARD, body);
  }

  /** COMMAND; resolves with its final NOTIFICATION (success or error alike). */
  command(action, args = {}) {
    const id = `c${this._nextId++}`;
    const done = new Promise((resolve) => this.pending.set(id, resolve));
    this._send(Msg.COMMAND, { id, action, ...args }).catch((e) => {
      this.pending.delete(id);
      this._emit("notification", { type: "error", text: String(e.message || e) });
    });
    return done;
  }

  // -- control messages in

  _onControl(type, data) {
    let body;
    try { body = JSON.parse(decoder.decode(data)); } catch { return; }
    if (body === null || typeof body !== "object") return;
    switch (type) {
      case Msg.HANDSHAKE:
        this.handshake = body;
        this.agent = { width: body.viewport.width, height: body.viewport.height };
        this._emit("handshake", body);
        if (this._handshakeWaiter) this._handshakeWaiter.resolve(body);
        break;
      case Msg.STATE: this._onState(body); break;
      case Msg.CURSOR: this._emit("cursor", body); break;
      case Msg.NOTIFICATION:
        if (!this.handshake && body.type === "error" && this._handshakeWaiter) {
          const err = new Error(body.text);
          err.code = body.code;
          this._handshakeWaiter.reject(err);
        }
        if (body.ref != null && (body.type === "success" || body.type === "error")) {
          const resolve = this.pending.get(body.ref);
          if (resolve) { this.pending.delete(body.ref); resolve(body); }
        }
        this._emit("notification", body);
        break;
      case Msg.CHAT: this._emit("chat", body); break;
      case Msg.CLIPBOARD: this._emit("clipboard", body); break;
      default: break;
    }
  }

  _onState(state) {
    if (state.viewport) this.agent = { width: state.viewport.width, height: state.viewport.height };
    this.state = state;
    if (state.mode && state.mode !== this.mode) {
      this.mode = state.mode;
      this._emit("mode", state.mode);
    }
    // House clarification 2: open pointer/button only once STATE confirms interact.
    if (this.mode === "interact" && this.requestedMode === "interact") this._openInput();
    else if (this.mode !== "interact") this._closeInput();
    this._emit("state", state);
  }

  async _openInput() {
    if (this._opening || this.inputReady) return;
    this._opening = (async () => {
      try {
        this.pointer = await this.session.openChannel("pointer", { reliable: false, ordered: false, maxRetransmits: 0 });
        this.button = await this.session.openChannel("button", { reliable: true, ordered: true });
        if (this.requestedMode !== "interact") this._closeInput();
        else this._emit("inputready", null);
      } catch (e) {
        this._emit("notification", { type: "error", text: `input channels refused: ${e.message}` });
        this._closeInput();
      } finally {
        this._opening = null;
      }
    })();
  }

  _closeInput() {
    for (const ch of [this.pointer, this.button]) if (ch && !ch.closed) ch.close();
    const had = this.pointer || this.button;
    this.pointer = this.button = null;
    if (had) this._emit("inputclosed", null);
  }

  _closed(code, reason) {
    if (this._ended) return;
    this._ended = true;
    this.pointer = this.button = null;
    if (this._handshakeWaiter && !this.handshake) {
      const err = new Error(reason || "closed");
      err.code = code;
      this._handshakeWaiter.reject(err);
    }
    for (const resolve of this.pending.values()) resolve({ type: "error", text: "connection closed" });
    this.pending.clear();
    this._emit("close", { code, reason });
  }

  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  // -- packed input (silently nothing unless interact mode has its channels)

  _pointer(type, payload) {
    if (this.pointer && !this.pointer.closed) this.pointer.send(type, payload).catch(() => {});
  }
  _button(type, payload) {
    if (this.button && !this.button.closed) this.button.send(type, payload).catch(() => {});
  }
  mouseMove(x, y) { this._pointer(Input.MOUSE_MOVE, packXY(x, y)); }
  mouseMoveRel(dx, dy) { this._pointer(Input.MOUSE_MOVE_REL, packDelta(dx, dy)); }
  scroll(dx, dy) { this._pointer(Input.SCROLL, packDelta(dx, dy)); }
  mouseDown(x, y, button = 0) { this._button(Input.MOUSE_DOWN, packButton(x, y, button)); }
  mouseUp(x, y, button = 0) { this._button(Input.MOUSE_UP, packButton(x, y, button)); }
  keyDown(key, code, modifiers) { this._button(Input.KEY_DOWN, packKey(key, code, modifiers)); }
  keyUp(key, code, modifiers) { this._button(Input.KEY_UP, packKey(key, code, modifiers)); }
  touchStart(id, x, y, pressure = 255) { this._button(Input.TOUCH_START, packTouch(id, x, y, pressure)); }
  touchMove(id, x, y, pressure = 255) { this._button(Input.TOUCH_MOVE, packTouch(id, x, y, pressure)); }
  touchEnd(id) { this._button(Input.TOUCH_END, new Uint8Array([id & 0xff])); }
}
