// openmux.js: an OpenMux 0.1 client for browsers, over WebSocket or WebRTC DataChannels.
//
// A dependency-free ES module, the browser twin of `openmux.aio.connect()`:
//
//   import { connect } from "/openmux.js";
//   const session = await connect("ws://127.0.0.1:8080/omux", { token, channels: ["echo"] });
//   const echo = session.channel("echo");
//   await echo.send(1, "hello");
//   const { type, data } = await echo.recv();   // data is a Uint8Array
//   await session.close();
//
// `connect("webrtc+http://host:port[/base]", { fallback: "ws://host:port/omux" })`
// POSTs an offer to `<base>/offer`, runs one DataChannel per OpenMux channel
// (`omux/control` negotiated with id 0; `omux/<name>` for each channel, created
// by the side that asked for the channel once it is open), and falls back to
// the WebSocket URL if no DataChannel is open after `rtcTimeout` ms (10 s),
// or at once if WebRTC fails. Wire rules: ../shared/spec/OPENMUX.md and
// docs/protocol/openmux.md; the Python implementation is the reference.

export const VERSION = [0, 1, 0];
export const PROTOCOL = "openmux/0.1";
export const PROTOCOLS = ["openmux/0.1", "xumux/0.1"];
export const CONTROL_LABEL = "omux/control";

export const CloseCode = Object.freeze({
  NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, UNSUPPORTED: 1003,
  AUTH_FAILED: 4000, INVALID_MESSAGE: 4001, CHANNEL_FULL: 4002, CHANNEL_NOT_FOUND: 4003,
  RATE_LIMITED: 4004, MESSAGE_TOO_LARGE: 4005, VERSION_MISMATCH: 4006, HELLO_TIMEOUT: 4007,
});

export const ControlType = Object.freeze({
  HELLO: 0x01, WELCOME: 0x02, OPEN_CHANNEL: 0x03, CHANNEL_ACK: 0x04, CLOSE_CHANNEL: 0x05,
  CHANNEL_REJECT: 0x06, PING: 0x10, PONG: 0x11, CLOSE: 0x20, ERROR: 0xf0,
});

const FLAG_EXTENDED = 0x01;
const FLAG_FRAGMENT = 0x02;
const FLAG_FRAGMENT_END = 0x04;
const HEADER = 6;
const EXTENDED_HEADER = 8;
const MAX_STANDARD = 0xffff;
const MAX_CHANNEL = 254;
const DEFAULT_SCTP_MESSAGE = 65536; // RFC 8841 §6, when the SDP says nothing

const DEFAULTS = Object.freeze({
  token: null,
  bearer: false, // WebRTC only: also send the token as `Authorization: Bearer` on /offer
  application: null,
  channels: [],
  extensions: ["fragmentation"],
  maxMessageSize: 65535,
  maxReassembly: 16 * 1024 * 1024,
  maxControlMessage: 1024 * 1024,
  pingInterval: 30,
  pingTimeout: 10,
  closeTimeout: 1,
  timeout: 10, // seconds until WELCOME, per transport attempt
  rtcTimeout: 10, // seconds without an open DataChannel before falling back
  fallback: null, // ws(s):// URL tried when WebRTC fails
  peerConnection: null, // WebRTC only: (pc) => void | Promise, before the offer (add media tracks here)
  iceServers: [],
  highWater: 256 * 1024, // send() waits while more than this is buffered
  channelPolicy: null, // (spec) => null | code | Promise thereof, for channels the server opens
});

// ------------------------------------------------------------------ errors

export class OpenMuxError extends Error {
  constructor(message, code = CloseCode.PROTOCOL_ERROR) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
  }
}
export class HandshakeError extends OpenMuxError {}
export class TransportError extends OpenMuxError {
  constructor(message) { super(message, CloseCode.GOING_AWAY); }
}
export class SessionClosedError extends OpenMuxError {}
export class ChannelClosedError extends OpenMuxError {
  constructor(message) { super(message, CloseCode.NORMAL); }
}
export class ChannelRejectedError extends OpenMuxError {}
class PeerError extends OpenMuxError {} // the peer broke the protocol: answered on the wire

// ------------------------------------------------------------------ frames

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function toBytes(data) {
  if (data == null) return new Uint8Array(0);
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError("message data must be a string, ArrayBuffer or typed array");
}

/** One frame: header (EXTENDED_LENGTH chosen as needed) + payload. */
export function encodeFrame(channel, type, payload, flags = 0) {
  const body = toBytes(payload);
  const extended = body.length > MAX_STANDARD;
  const head = extended ? EXTENDED_HEADER : HEADER;
  const frame = new Uint8Array(head + body.length);
  const view = new DataView(frame.buffer);
  frame[0] = channel;
  frame[1] = type;
  frame[2] = flags | (extended ? FLAG_EXTENDED : 0);
  frame[3] = 0;
  if (extended) view.setUint32(4, body.length);
  else view.setUint16(4, body.length);
  frame.set(body, head);
  return frame;
}

/** Parse a message holding exactly one frame; throws PeerError (1002 or 4005). */
export function decodeFrame(message, limit = 0) {
  const bytes = toBytes(message);
  if (bytes.length < HEADER) throw new PeerError(`message of ${bytes.length} bytes is shorter than a frame header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const channel = bytes[0], type = bytes[1], flags = bytes[2], reserved = bytes[3];
  if (reserved !== 0) throw new PeerError("reserved header byte is not 0");
  if (flags & 0xf8) throw new PeerError("reserved flag bits set");
  if (channel === 255) throw new PeerError("channel 255 is reserved");
  if ((flags & FLAG_FRAGMENT_END) && !(flags & FLAG_FRAGMENT)) throw new PeerError("FRAGMENT_END without FRAGMENT");
  let head = HEADER, length = view.getUint16(4);
  if (flags & FLAG_EXTENDED) {
    if (bytes.length < EXTENDED_HEADER) throw new PeerError("message is shorter than an extended header");
    head = EXTENDED_HEADER;
    length = view.getUint32(4);
  }
  if (limit && length > limit) throw new PeerError(`frame declares ${length} bytes, limit is ${limit}`, CloseCode.MESSAGE_TOO_LARGE);
  if (bytes.length !== head + length) throw new PeerError("one message must hold exactly one frame");
  return { channel, type, flags: flags & ~FLAG_EXTENDED, payload: bytes.subarray(head) };
}

function isInt(v) { return Number.isInteger(v); }

function specFromJson(obj) {
  if (!obj || typeof obj !== "object") return null;
  const { name, reliable, ordered } = obj;
  if (typeof name !== "string" || !name || typeof reliable !== "boolean" || typeof ordered !== "boolean") return null;
  return {
    name, reliable, ordered,
    maxRetransmits: isInt(obj.maxRetransmits) ? obj.maxRetransmits : undefined,
    maxPacketLifeTime: isInt(obj.maxPacketLifeTime) ? obj.maxPacketLifeTime : undefined,
    metadata: obj.metadata && typeof obj.metadata === "object" ? obj.metadata : undefined,
  };
}

function specToJson(spec) {
  const obj = { name: spec.name, reliable: spec.reliable, ordered: spec.ordered };
  if (spec.maxRetransmits != null) obj.maxRetransmits = spec.maxRetransmits;
  if (spec.maxPacketLifeTime != null) obj.maxPacketLifeTime = spec.maxPacketLifeTime;
  if (spec.metadata != null) obj.metadata = spec.metadata;
  return obj;
}

function normalizeSpec(spec, extra = {}) {
  const s = typeof spec === "string" ? { name: spec, ...extra } : { ...spec };
  return { reliable: true, ordered: true, ...s };
}

// ---------------------------------------------------------------- channels

/** An open channel: send(), recv(), `for await`, close(). */
export class Channel {
  constructor(session, info) {
    this._session = session;
    this.id = info.id;
    this.name = info.name;
    this.reliable = info.reliable;
    this.ordered = info.ordered;
    this.maxRetransmits = info.maxRetransmits;
    this.maxPacketLifeTime = info.maxPacketLifeTime;
    this.metadata = info.metadata;
    this.closed = false;
    this.closeReason = "";
    this.onmessage = null; // optional: (message) => void, instead of recv()
    this._queue = [];
    this._waiters = [];
  }

  get fragmentable() { return this.reliable && this.ordered; }

  /** Send one message; waits while the transport holds more than `highWater` bytes. */
  async send(type, data) {
    const s = this._session;
    await s._waitWritable(this.id);
    if (this.closed) throw new ChannelClosedError(`channel ${this.name} is closed`);
    s._sendMessage(this, type, toBytes(data));
  }

  /** The next message `{type, data}`; ChannelClosedError once closed and drained. */
  recv() {
    if (this._queue.length) return Promise.resolve(this._queue.shift());
    if (this.closed) return Promise.reject(new ChannelClosedError(`channel ${this.name} is closed ${this.closeReason}`.trim()));
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      try { yield await this.recv(); } catch (e) { if (e instanceof ChannelClosedError) return; throw e; }
    }
  }

  /** Close at once (CLOSE_CHANNEL is not acknowledged); unread messages are dropped. */
  async close(reason = "") {
    if (this.closed) return;
    this._session._closeChannel(this, reason, false);
  }

  _deliver(message) {
    if (this.onmessage) { this.onmessage(message); return; }
    const waiter = this._waiters.shift();
    if (waiter) waiter.resolve(message);
    else this._queue.push(message);
  }

  _markClosed(reason) {
    this.closed = true;
    this.closeReason = reason;
    for (const w of this._waiters.splice(0)) w.reject(new ChannelClosedError(`channel ${this.name} is closed ${reason}`.trim()));
  }
}

// ----------------------------------------------------------------- session

/** A client session over one transport (made by `connect()`). */
export class Session {
  constructor(transport, options) {
    this.options = options;
    this.transport = transport;
    this.kind = transport.kind; // "websocket" | "webrtc"
    this.state = "idle";
    this.channels = new Map(); // name -> Channel
    this.byId = new Map(); // id -> Channel
    this.maxMessageSize = options.maxMessageSize;
    this.pingInterval = options.pingInterval;
    this.pingTimeout = options.pingTimeout;
    this.version = VERSION;
    this.extensions = [];
    this.welcome = null;
    this.rtt = null;
    this.closeCode = null;
    this.closeReason = "";
    this.closedByPeer = false;
    this.onerror = null; // (ERROR body) => void
    this._requested = new Map(options.channels.map((c) => [c.name, c]));
    this._nextRequest = 1;
    this._outgoing = new Map(); // requestId -> {spec, resolve, reject}
    this._incomingPending = new Set(); // requestIds of the server's OPEN_CHANNELs being decided
    this._pendingNames = new Set();
    this._accepted = [];
    this._acceptWaiters = [];
    this._reassembly = new Map(); // channel id -> {type, parts, size}
    this._pings = [];
    this._pingSentAt = null;
    this._pingDeadline = null;
    this._timer = null;
    this._closeTimer = null;
    this._epoch = performance.now();
    this._lastRx = this._epoch;
    let settle;
    this.closed = new Promise((resolve) => { settle = resolve; });
    this._settleClosed = settle;
    this._handshake = {};
    this._handshake.promise = new Promise((resolve, reject) => Object.assign(this._handshake, { resolve, reject }));
    this._handshake.promise.catch(() => {});
    transport.attach(this);
  }

  get isOpen() { return this.state === "open"; }

  channel(name) {
    const ch = this.channels.get(name);
    if (!ch) throw new Error(`no open channel named ${name}`);
    return ch;
  }

  /** Ask the server for a channel; rejects with ChannelRejectedError (its `code`). */
  openChannel(name, opts = {}) {
    this._checkOpen();
    const spec = normalizeSpec(name, opts);
    if (this.channels.has(spec.name) || this._pendingNames.has(spec.name)) {
      return Promise.reject(new OpenMuxError(`channel ${spec.name} is already open or requested`));
    }
    const requestId = this._nextRequest++;
    this._pendingNames.add(spec.name);
    const promise = new Promise((resolve, reject) => this._outgoing.set(requestId, { spec, resolve, reject }));
    this._control(ControlType.OPEN_CHANNEL, { requestId, ...specToJson(spec) });
    return promise;
  }

  /** The next channel the server opened (and the policy accepted). */
  accept() {
    if (this._accepted.length) return Promise.resolve(this._accepted.shift());
    if (this.state === "closed") return Promise.reject(this._closedError());
    return new Promise((resolve, reject) => this._acceptWaiters.push({ resolve, reject }));
  }

  /** PING now; resolves with the RTT in seconds. */
  ping() {
    this._checkOpen();
    const now = performance.now();
    this._sendPing(now);
    return new Promise((resolve, reject) => this._pings.push({ resolve, reject }));
  }

  /** CLOSE, wait (closeTimeout) for the server's, then close the transport. */
  async close(code = CloseCode.NORMAL, reason = "") {
    if (this.state === "open" || this.state === "await-welcome") {
      this._startClose(code, reason);
    }
    await this.closed;
  }

  // -- internals: transport side

  _start() {
    this.state = "await-welcome";
    const o = this.options;
    const hello = {
      version: VERSION,
      extensions: o.extensions,
      maxMessageSize: o.maxMessageSize,
      pingInterval: o.pingInterval,
      pingTimeout: o.pingTimeout,
      channels: o.channels.map(specToJson),
    };
    if (o.application != null) hello.application = o.application;
    if (o.token != null) hello.auth = { type: "token", token: o.token };
    this._control(ControlType.HELLO, hello);
  }

  _frameReceived(message) {
    if (this.state === "closed") return;
    this._lastRx = performance.now();
    let frame;
    try {
      const limit = this.maxMessageSize || this.options.maxReassembly; // ours until WELCOME
      frame = decodeFrame(message, limit);
      this._handleFrame(frame);
    } catch (e) {
      if (e instanceof PeerError) this._fail(e.code, e.message);
      else throw e;
    }
  }

  _transportLost(reason) {
    if (this.state === "closed") return;
    if (this.state !== "closing") {
      this.closeCode = CloseCode.GOING_AWAY;
      this.closeReason = reason || "transport closed";
      this.closedByPeer = true;
    }
    this._finish(this.closedByPeer);
  }

  // -- internals: frames in

  _handleFrame({ channel, type, flags, payload }) {
    if (this.state === "closing") {
      if (channel === 0 && type === ControlType.CLOSE && !flags) this._finish(false);
      return;
    }
    if (this.state === "open" && channel !== 0) {
      const ch = this.byId.get(channel);
      if (!ch) {
        this._error(CloseCode.CHANNEL_NOT_FOUND, `channel ${channel} is not open`, channel);
        return;
      }
      if (flags || this._reassembly.has(channel)) {
        if (!ch.fragmentable && flags) throw new PeerError(`FRAGMENT on channel ${ch.name}, which is not reliable+ordered`);
        payload = this._reassemble(channel, type, flags, payload);
        if (payload === null) return;
      }
      ch._deliver({ type, data: payload });
      return;
    }
    if (channel !== 0) throw new PeerError(`frame on channel ${channel} before the handshake`);
    if (flags || this._reassembly.has(0)) {
      payload = this._reassemble(0, type, flags, payload);
      if (payload === null) return;
    }
    this._handleControl(type, payload);
  }

  _reassemble(channel, type, flags, payload) {
    let current = this._reassembly.get(channel);
    if (!current) {
      if (!(flags & FLAG_FRAGMENT)) return payload;
      current = { type, parts: [], size: 0 };
    } else if (!(flags & FLAG_FRAGMENT) || current.type !== type) {
      throw new PeerError(`a new message started on channel ${channel} before FRAGMENT_END`);
    }
    current.size += payload.length;
    const limit = channel === 0 ? Math.min(this.options.maxReassembly, this.options.maxControlMessage) : this.options.maxReassembly;
    if (current.size > limit) {
      this._reassembly.delete(channel);
      throw new PeerError(`reassembled message exceeds ${limit} bytes`, CloseCode.MESSAGE_TOO_LARGE);
    }
    current.parts.push(payload.slice());
    if (flags & FLAG_FRAGMENT_END) {
      this._reassembly.delete(channel);
      const out = new Uint8Array(current.size);
      let pos = 0;
      for (const p of current.parts) { out.set(p, pos); pos += p.length; }
      return out;
    }
    this._reassembly.set(channel, current);
    return null;
  }

  _json(payload) {
    try {
      const body = JSON.parse(decoder.decode(payload));
      return body && typeof body === "object" && !Array.isArray(body) ? body : null;
    } catch { return null; }
  }

  _handleControl(type, payload) {
    if (this.state !== "open") {
      if (type === ControlType.CLOSE) this._onClose(payload);
      else if (type === ControlType.WELCOME) this._onWelcome(payload);
      else if (type === ControlType.ERROR) this._onError(this._json(payload) || {}); // as the core
      else throw new PeerError(`control type 0x${type.toString(16)} before the handshake completed`);
      return;
    }
    switch (type) {
      case ControlType.PING: {
        if (payload.length !== 4) throw new PeerError(`PING payload is ${payload.length} bytes, not 4`);
        const out = new Uint8Array(8);
        out.set(payload, 0);
        new DataView(out.buffer).setUint32(4, this._timestamp(performance.now()));
        this._write(encodeFrame(0, ControlType.PONG, out));
        return;
      }
      case ControlType.PONG: {
        if (payload.length !== 8) throw new PeerError(`PONG payload is ${payload.length} bytes, not 8`);
        const echo = new DataView(payload.buffer, payload.byteOffset, 8).getUint32(0);
        const rtt = ((this._timestamp(performance.now()) - echo) >>> 0) / 1000;
        this.rtt = rtt;
        this._pingSentAt = this._pingDeadline = null;
        const waiter = this._pings.shift();
        if (waiter) waiter.resolve(rtt);
        this._armTimer();
        return;
      }
      case ControlType.HELLO:
      case ControlType.WELCOME:
        throw new PeerError("a second HELLO/WELCOME");
      case ControlType.CLOSE:
        this._onClose(payload);
        return;
      default:
        break;
    }
    const handlers = {
      [ControlType.OPEN_CHANNEL]: this._onOpenChannel,
      [ControlType.CHANNEL_ACK]: this._onChannelAck,
      [ControlType.CHANNEL_REJECT]: this._onChannelReject,
      [ControlType.CLOSE_CHANNEL]: this._onCloseChannel,
      [ControlType.ERROR]: this._onError,
    };
    const handler = handlers[type];
    if (!handler) {
      this._error(CloseCode.UNSUPPORTED, `unknown control type 0x${type.toString(16)}`);
      return;
    }
    const body = this._json(payload);
    if (!body) {
      if (type !== ControlType.ERROR) this._error(CloseCode.INVALID_MESSAGE, `control type 0x${type.toString(16)}: payload is not a JSON object`);
      return;
    }
    handler.call(this, body);
  }

  _onWelcome(payload) {
    const body = this._json(payload);
    const v = body && body.version;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => isInt(x) && x >= 0)) {
      throw new PeerError("WELCOME is malformed", CloseCode.INVALID_MESSAGE);
    }
    if (v[0] !== VERSION[0]) {
      throw new PeerError(`unsupported version ${v.join(".")} (client speaks ${VERSION.join(".")})`, CloseCode.VERSION_MISMATCH);
    }
    const { maxMessageSize = 65535, pingInterval = 30, pingTimeout = 10, channels = [], extensions = [] } = body;
    const numbersOk = [maxMessageSize, pingInterval, pingTimeout].every((x) => typeof x === "number" && x >= 0);
    if (!numbersOk || !Array.isArray(channels) || !Array.isArray(extensions)) {
      throw new PeerError("WELCOME has a malformed field", CloseCode.INVALID_MESSAGE);
    }
    const granted = [];
    for (const entry of channels) {
      if (!entry || typeof entry !== "object") continue;
      const spec = typeof entry.name === "string" ? this._requested.get(entry.name) : undefined;
      if (!spec) continue;
      const id = entry.id;
      if (!isInt(id) || id < 1 || id > MAX_CHANNEL || this.byId.has(id) || this.channels.has(spec.name)) {
        throw new PeerError(`WELCOME gives channel ${spec.name} an invalid id`, CloseCode.INVALID_MESSAGE);
      }
      granted.push(this._register({ ...spec, id }));
    }
    const ours = this.options.maxMessageSize;
    this.maxMessageSize = ours === 0 ? maxMessageSize : maxMessageSize === 0 ? ours : Math.min(ours, maxMessageSize);
    this.pingInterval = pingInterval;
    this.pingTimeout = pingTimeout || this.options.pingTimeout;
    this.extensions = this.options.extensions.filter((e) => extensions.includes(e));
    this.version = v;
    this.welcome = body;
    this.state = "open";
    for (const ch of granted) this.transport.channelOpened(ch, true);
    this._handshake.resolve();
    this._armTimer();
  }

  _onClose(payload) {
    const body = this._json(payload) || {};
    const code = isInt(body.code) ? body.code : CloseCode.PROTOCOL_ERROR;
    this._write(encodeFrame(0, ControlType.CLOSE, encoder.encode(JSON.stringify({ code }))));
    this.closeCode = code;
    this.closeReason = typeof body.reason === "string" ? body.reason : "";
    this.closedByPeer = true;
    this._finish(true);
  }

  _requestId(body) {
    if (!isInt(body.requestId)) {
      this._error(CloseCode.INVALID_MESSAGE, "missing or invalid requestId");
      return null;
    }
    return body.requestId;
  }

  _onOpenChannel(body) {
    const requestId = this._requestId(body);
    if (requestId === null) return;
    const reject = (code, reason) => this._control(ControlType.CHANNEL_REJECT, { requestId, code, reason });
    if (this._incomingPending.has(requestId)) return reject(CloseCode.PROTOCOL_ERROR, "duplicate requestId");
    const spec = specFromJson(body);
    if (!spec) return reject(CloseCode.INVALID_MESSAGE, "missing name/reliable/ordered");
    const id = body.id;
    if (!isInt(id) || id < 1 || id > MAX_CHANNEL) return reject(CloseCode.INVALID_MESSAGE, "missing or invalid id");
    if (this.byId.has(id)) return reject(CloseCode.PROTOCOL_ERROR, `id ${id} is in use`);
    if (this.channels.has(spec.name) || this._pendingNames.has(spec.name)) {
      return reject(CloseCode.PROTOCOL_ERROR, `channel name ${spec.name} is in use`);
    }
    this._incomingPending.add(requestId);
    this._pendingNames.add(spec.name);
    const policy = this.options.channelPolicy;
    Promise.resolve(policy ? policy(spec) : null).catch(() => CloseCode.UNSUPPORTED).then((verdict) => {
      this._incomingPending.delete(requestId);
      this._pendingNames.delete(spec.name);
      if (this.state !== "open") return;
      if (verdict != null) {
        reject(isInt(verdict) ? verdict : CloseCode.UNSUPPORTED, "refused by the application");
        return;
      }
      if (this.byId.has(id) || this.channels.has(spec.name)) {
        reject(CloseCode.PROTOCOL_ERROR, "id or name taken meanwhile");
        return;
      }
      const ch = this._register({ ...spec, id });
      this._control(ControlType.CHANNEL_ACK, { requestId, id, name: spec.name });
      this.transport.channelOpened(ch, false);
      const waiter = this._acceptWaiters.shift();
      if (waiter) waiter.resolve(ch);
      else this._accepted.push(ch);
    });
  }

  _onChannelAck(body) {
    const requestId = this._requestId(body);
    if (requestId === null) return;
    const pending = this._outgoing.get(requestId);
    if (!pending) {
      this._error(CloseCode.INVALID_MESSAGE, `CHANNEL_ACK for unknown requestId ${requestId}`);
      return;
    }
    this._outgoing.delete(requestId);
    this._pendingNames.delete(pending.spec.name);
    const id = body.id;
    if (!isInt(id) || id < 1 || id > MAX_CHANNEL || this.byId.has(id)) {
      throw new PeerError(`CHANNEL_ACK carries an invalid id ${id}`);
    }
    const ch = this._register({ ...pending.spec, id });
    this.transport.channelOpened(ch, true);
    pending.resolve(ch);
  }

  _onChannelReject(body) {
    const requestId = this._requestId(body);
    if (requestId === null) return;
    const pending = this._outgoing.get(requestId);
    if (!pending) {
      this._error(CloseCode.INVALID_MESSAGE, `CHANNEL_REJECT for unknown requestId ${requestId}`);
      return;
    }
    this._outgoing.delete(requestId);
    this._pendingNames.delete(pending.spec.name);
    const code = isInt(body.code) ? body.code : CloseCode.PROTOCOL_ERROR;
    const reason = typeof body.reason === "string" ? body.reason : "";
    pending.reject(new ChannelRejectedError(`channel ${pending.spec.name} rejected (${code}) ${reason}`.trim(), code));
  }

  _onCloseChannel(body) {
    const id = body.id;
    if (!isInt(id)) { this._error(CloseCode.INVALID_MESSAGE, "CLOSE_CHANNEL without an id"); return; }
    if (id === 0) { this._error(CloseCode.PROTOCOL_ERROR, "channel 0 cannot be closed", 0); return; }
    const ch = this.byId.get(id);
    if (!ch) { this._error(CloseCode.CHANNEL_NOT_FOUND, `channel ${id} is not open`, id); return; }
    this._closeChannel(ch, typeof body.reason === "string" ? body.reason : "", true);
  }

  _onError(body) {
    if (!isInt(body.code)) return;
    if (this.onerror) this.onerror(body);
  }

  // -- internals: frames out

  _write(frame) { this.transport.send(frame); }

  _control(type, body) {
    const payload = encoder.encode(JSON.stringify(body));
    const limit = this.maxMessageSize;
    if (limit && payload.length > limit) this._fragments(0, type, payload, limit);
    else this._write(encodeFrame(0, type, payload));
  }

  _fragments(channel, type, data, limit) {
    for (let pos = 0; pos < data.length; pos += limit) {
      const last = pos + limit >= data.length;
      const flags = FLAG_FRAGMENT | (last ? FLAG_FRAGMENT_END : 0);
      this._write(encodeFrame(channel, type, data.subarray(pos, pos + limit), flags));
    }
  }

  _sendMessage(ch, type, data) {
    if (this.state !== "open") throw this._closedError();
    if (!isInt(type) || type < 0 || type > 255) throw new OpenMuxError(`message type ${type} does not fit a byte`);
    const limit = this.maxMessageSize;
    if (limit && data.length > limit) {
      if (!ch.fragmentable) {
        throw new OpenMuxError(`${data.length}-byte message is over maxMessageSize ${limit} and channel ${ch.name} cannot be fragmented`, CloseCode.MESSAGE_TOO_LARGE);
      }
      this._fragments(ch.id, type, data, limit);
    } else {
      this._write(encodeFrame(ch.id, type, data));
    }
  }

  async _waitWritable(channelId) {
    while (this.state === "open" && this.transport.buffered(channelId) > this.options.highWater) {
      await this.transport.drained(channelId);
    }
    if (this.state !== "open") throw this._closedError();
  }

  _error(code, reason, channel) {
    const body = { code };
    if (channel != null) body.channel = channel;
    if (reason) body.reason = reason;
    this._control(ControlType.ERROR, body);
  }

  _sendPing(now) {
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint32(0, this._timestamp(now));
    this._write(encodeFrame(0, ControlType.PING, payload));
    if (this._pingDeadline === null) {
      this._pingSentAt = now;
      this._pingDeadline = now + this.pingTimeout * 1000;
    }
    this._armTimer();
  }

  _timestamp(now) { return Math.floor(now - this._epoch) >>> 0; }

  _register(info) {
    const ch = new Channel(this, info);
    this.channels.set(ch.name, ch);
    this.byId.set(ch.id, ch);
    return ch;
  }

  _closeChannel(ch, reason, byPeer) {
    if (this.byId.get(ch.id) !== ch) return;
    this.byId.delete(ch.id);
    this.channels.delete(ch.name);
    this._reassembly.delete(ch.id);
    if (!byPeer && this.state === "open") {
      const body = { id: ch.id };
      if (reason) body.reason = reason;
      this._control(ControlType.CLOSE_CHANNEL, body);
    }
    ch._markClosed(reason || (byPeer ? "closed by peer" : "closed locally"));
    this.transport.channelClosed(ch);
  }

  _checkOpen() {
    if (this.state !== "open") throw this.state === "closing" || this.state === "closed" ? this._closedError() : new OpenMuxError("the handshake is not complete");
  }

  _closedError() {
    const code = this.closeCode ?? CloseCode.NORMAL;
    return new SessionClosedError(`session closed (${code}) ${this.closeReason}`.trim(), code);
  }

  _fail(code, reason) {
    if (this.state === "closing" || this.state === "closed") return;
    if (code === CloseCode.MESSAGE_TOO_LARGE && this.state === "open") this._error(code, reason);
    this._startClose(code, reason);
  }

  _startClose(code, reason) {
    this.closeCode = code;
    this.closeReason = reason;
    const body = { code };
    if (reason) body.reason = reason;
    this._control(ControlType.CLOSE, body);
    this.state = "closing";
    clearTimeout(this._timer);
    this._closeTimer = setTimeout(() => this._finish(false), this.options.closeTimeout * 1000);
  }

  _finish(byPeer) {
    if (this.state === "closed") return;
    const wasOpen = this.state === "open" || this.state === "closing";
    this.state = "closed";
    clearTimeout(this._timer);
    clearTimeout(this._closeTimer);
    this.closedByPeer = byPeer;
    const code = this.closeCode ?? CloseCode.NORMAL;
    const error = this._closedError();
    if (this.welcome === null) this._handshake.reject(new HandshakeError(`handshake failed (${code}) ${this.closeReason}`.trim(), code));
    for (const { reject } of this._outgoing.values()) reject(error);
    this._outgoing.clear();
    for (const p of this._pings.splice(0)) p.reject(error);
    for (const w of this._acceptWaiters.splice(0)) w.reject(error);
    for (const ch of this.byId.values()) ch._markClosed(`session closed (${code})`);
    this.byId.clear();
    this.channels.clear();
    this.transport.close(code === CloseCode.GOING_AWAY, wasOpen);
    this._settleClosed({ code, reason: this.closeReason, byPeer });
  }

  _armTimer() {
    clearTimeout(this._timer);
    if (this.state !== "open" || !(this.pingInterval > 0)) return;
    const now = performance.now();
    const at = this._pingDeadline ?? this._lastRx + this.pingInterval * 1000;
    this._timer = setTimeout(() => this._onTimer(), Math.max(0, at - now));
  }

  _onTimer() {
    if (this.state !== "open") return;
    const now = performance.now();
    if (this._pingDeadline !== null) {
      if (now >= this._pingDeadline) {
        if (this._lastRx > this._pingSentAt) {
          this._pingDeadline = this._lastRx + this.pingTimeout * 1000; // its PONG is queued behind data
        } else {
          this._startClose(CloseCode.GOING_AWAY, "ping timeout");
          this._finish(false);
          return;
        }
      }
    } else if (now >= this._lastRx + this.pingInterval * 1000) {
      this._sendPing(now);
      return;
    }
    this._armTimer();
  }
}

// --------------------------------------------------------------- transports

/** OpenMux over one WebSocket: one frame per binary message. */
class WebSocketTransport {
  constructor(url) {
    this.kind = "websocket";
    this.url = url;
    this.session = null;
    this.ws = null;
  }

  open(timeoutMs) {
    return new Promise((resolve, reject) => {
      let ws;
      try { ws = new WebSocket(this.url); } catch (e) { reject(new TransportError(String(e))); return; }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      const timer = setTimeout(() => { ws.close(); reject(new TransportError("WebSocket open timed out")); }, timeoutMs);
      ws.onopen = () => { clearTimeout(timer); resolve(); };
      ws.onerror = () => { clearTimeout(timer); reject(new TransportError(`WebSocket to ${this.url} failed`)); };
    });
  }

  attach(session) {
    this.session = session;
    const ws = this.ws;
    ws.onmessage = (event) => {
      if (typeof event.data === "string") session._fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux WebSocket");
      else session._frameReceived(new Uint8Array(event.data));
    };
    ws.onclose = () => session._transportLost("WebSocket closed");
    ws.onerror = null;
  }

  send(frame) { if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame); }
  buffered() { return this.ws.bufferedAmount; }
  drained() { return new Promise((resolve) => setTimeout(resolve, 5)); } // WebSocket has no "low" event
  channelOpened() {}
  channelClosed() {}

  close(goingAway) {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(goingAway ? 1001 : 1000);
  }
}

function dcOptions(ch) {
  const opts = { ordered: ch.ordered, protocol: PROTOCOL };
  if (!ch.reliable) {
    if (ch.maxPacketLifeTime != null && ch.maxRetransmits == null) opts.maxPacketLifeTime = ch.maxPacketLifeTime;
    else opts.maxRetransmits = ch.maxRetransmits ?? 0;
  }
  return opts;
}

function waitEvent(target, name, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    target.addEventListener(name, () => { clearTimeout(timer); resolve(true); }, { once: true });
  });
}

/** OpenMux over WebRTC DataChannels: `omux/control` + one `omux/<name>` per channel. */
class WebRTCTransport {
  constructor(url, options) {
    this.kind = "webrtc";
    const base = url.replace(/^webrtc\+/, "").replace(/\/+$/, "");
    this.offerUrl = `${base}/offer`;
    this.candidateUrl = `${base}/candidate`;
    this.options = options;
    this.session = null;
    this.pc = null;
    this.control = null;
    this.dcs = new Map(); // channel id -> RTCDataChannel
    this.held = new Map(); // channel id -> frames waiting for their DataChannel
    this.heldBytes = 0;
    this.peerId = null;
    this.maxFrame = DEFAULT_SCTP_MESSAGE;
    this._closing = false;
  }

  _headers() {
    const headers = { "Content-Type": "application/json" };
    if (this.options.bearer && this.options.token != null) headers.Authorization = `Bearer ${this.options.token}`;
    return headers;
  }

  /** Offer/answer, then wait for `omux/control` to open (until `deadline`, a performance.now() time). */
  async open(deadline) {
    const pc = new RTCPeerConnection({ iceServers: this.options.iceServers });
    this.pc = pc;
    const control = pc.createDataChannel(CONTROL_LABEL, { negotiated: true, id: 0, protocol: PROTOCOL });
    control.binaryType = "arraybuffer";
    this.control = control;
    if (this.options.peerConnection) await this.options.peerConnection(pc);
    const late = [];
    let posted = false;
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      const init = c ? c.toJSON() : { candidate: "" };
      if (posted) this._trickle([init]);
      else late.push(init);
    };
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") {
      // Send the offer with what was gathered in a short while; trickle the rest.
      await waitEvent(pc, "icegatheringstatechange", Math.min(2000, Math.max(0, deadline - performance.now())));
    }
    const offer = { sdp: pc.localDescription.sdp, type: "offer", candidates: [] };
    late.length = 0; // in the SDP now
    let response, answer;
    const abort = new AbortController(); // the signaling server too gets until the deadline
    const timer = setTimeout(() => abort.abort(), Math.max(0, deadline - performance.now()));
    try {
      response = await fetch(this.offerUrl, {
        method: "POST", headers: this._headers(), body: JSON.stringify(offer), signal: abort.signal,
      });
      if (response.ok) answer = await response.json();
    } catch (e) {
      throw new TransportError(`WebRTC signaling at ${this.offerUrl} failed: ${e}`);
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 401 || response.status === 403) throw new HandshakeError(`HTTP ${response.status}`, CloseCode.AUTH_FAILED);
    if (!response.ok) throw new TransportError(`WebRTC offer refused: HTTP ${response.status}`);
    if (!answer || typeof answer.sdp !== "string") throw new TransportError("the WebRTC signaling answer is malformed");
    this.peerId = typeof answer.id === "string" ? answer.id : null;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    for (const c of answer.candidates || []) await pc.addIceCandidate(c);
    posted = true;
    if (late.length) this._trickle(late.splice(0));
    const sctpMax = pc.sctp && pc.sctp.maxMessageSize;
    if (sctpMax === Infinity || sctpMax === 0) this.maxFrame = 0;
    else if (sctpMax) this.maxFrame = sctpMax;
    if (control.readyState !== "open") {
      const failed = new Promise((resolve) => {
        pc.addEventListener("connectionstatechange", () => {
          if (pc.connectionState === "failed" || pc.connectionState === "closed") resolve(false);
        });
      });
      const opened = await Promise.race([waitEvent(control, "open", Math.max(0, deadline - performance.now())), failed]);
      if (!opened) throw new TransportError("no open DataChannel");
    }
  }

  _trickle(candidates) {
    if (!this.peerId) return;
    fetch(this.candidateUrl, {
      method: "POST", headers: this._headers(), body: JSON.stringify({ id: this.peerId, candidates }),
    }).catch(() => {});
  }

  /** The largest maxMessageSize whose frames fit one SCTP message. */
  fitMessageSize(size) {
    if (!this.maxFrame) return size;
    const cap = Math.max(this.maxFrame - EXTENDED_HEADER, 1);
    return size === 0 || size > cap ? cap : size;
  }

  attach(session) {
    this.session = session;
    this._bind(this.control, 0);
    this.control.onclose = () => session._transportLost("omux/control closed");
    this.pc.addEventListener("connectionstatechange", () => {
      const state = this.pc.connectionState;
      if (state === "failed" || state === "closed") session._transportLost(`peer connection ${state}`);
    });
    this.pc.ondatachannel = (event) => this._incoming(event.channel);
  }

  _bind(dc, id) {
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = this.options.highWater / 4;
    this.dcs.set(id, dc);
    dc.onmessage = (event) => {
      if (this.dcs.get(id) !== dc) return; // its channel is closed: in-flight, discarded
      if (typeof event.data === "string") this.session._fail(CloseCode.PROTOCOL_ERROR, "text message on an OpenMux DataChannel");
      else this.session._frameReceived(new Uint8Array(event.data));
    };
    if (id !== 0) {
      dc.onclose = () => {
        if (this.dcs.get(id) !== dc) return;
        this.dcs.delete(id);
        const ch = this.session.byId.get(id);
        if (ch) ch.close("DataChannel closed"); // CLOSE_CHANNEL
      };
    }
  }

  _incoming(dc) {
    const name = dc.label.startsWith("omux/") ? dc.label.slice(5) : null;
    const ch = name && dc.label !== CONTROL_LABEL ? this.session.channels.get(name) : null;
    if (!ch || !PROTOCOLS.includes(dc.protocol) || this.dcs.has(ch.id)) { dc.close(); return; }
    this._bind(dc, ch.id);
    if (dc.readyState === "open") this._flush(ch.id);
    else dc.addEventListener("open", () => this._flush(ch.id), { once: true });
  }

  channelOpened(ch, opener) {
    if (!opener) return; // the server creates it
    let dc;
    try { dc = this.pc.createDataChannel(`omux/${ch.name}`, dcOptions(ch)); } catch { return; }
    this._bind(dc, ch.id);
    dc.addEventListener("open", () => this._flush(ch.id), { once: true });
  }

  channelClosed(ch) {
    const dc = this.dcs.get(ch.id);
    this.dcs.delete(ch.id);
    for (const f of this.held.get(ch.id) || []) this.heldBytes -= f.length;
    this.held.delete(ch.id);
    if (dc) dc.close();
  }

  send(frame) {
    const id = frame[0];
    const dc = this.dcs.get(id);
    if (dc && dc.readyState === "open" && !this.held.has(id)) {
      try { dc.send(frame); } catch { /* closing: the close handlers take over */ }
    } else if (id !== 0 && this.session.byId.has(id)) {
      if (!this.held.has(id)) this.held.set(id, []);
      this.held.get(id).push(frame);
      this.heldBytes += frame.length;
    }
  }

  _flush(id) {
    const dc = this.dcs.get(id);
    const frames = this.held.get(id) || [];
    this.held.delete(id);
    for (const f of frames) {
      this.heldBytes -= f.length;
      try { dc.send(f); } catch { /* closing */ }
    }
  }

  buffered(id) {
    const dc = this.dcs.get(id);
    return this.heldBytes + (dc ? dc.bufferedAmount : 0);
  }

  drained(id) {
    const dc = this.dcs.get(id);
    if (!dc || dc.readyState !== "open" || dc.bufferedAmount <= dc.bufferedAmountLowThreshold) {
      return new Promise((resolve) => setTimeout(resolve, 5)); // held frames: wait for the DC
    }
    return waitEvent(dc, "bufferedamountlow", 1000);
  }

  /** After the final CLOSE: close omux/control (a graceful stream reset, behind the CLOSE), then the connection. */
  close() {
    if (this._closing) return;
    this._closing = true;
    const { pc, control } = this;
    const timeout = this.options.closeTimeout * 1000;
    (async () => {
      if (control && control.readyState === "open") {
        control.close();
        await waitEvent(control, "close", timeout);
      }
      pc.close();
    })();
  }

  abort() {
    this._closing = true;
    if (this.pc) this.pc.close();
  }
}

// ----------------------------------------------------------------- connect

function withDefaults(options) {
  const o = { ...DEFAULTS, ...options };
  o.channels = (o.channels || []).map((c) => normalizeSpec(c));
  const names = o.channels.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new TypeError("channel names must be unique");
  return o;
}

async function handshake(transport, options) {
  const session = new Session(transport, options);
  session._start();
  const timer = setTimeout(() => {
    if (session.state === "await-welcome") {
      session.closeCode = CloseCode.GOING_AWAY;
      session.closeReason = "no WELCOME in time";
      session._finish(false);
    }
  }, options.timeout * 1000);
  try {
    await session._handshake.promise;
  } finally {
    clearTimeout(timer);
  }
  return session;
}

async function connectWebSocket(url, options) {
  const transport = new WebSocketTransport(url);
  await transport.open(options.timeout * 1000);
  return handshake(transport, options);
}

async function connectWebRTC(url, options) {
  const transport = new WebRTCTransport(url, options);
  try {
    await transport.open(performance.now() + options.rtcTimeout * 1000);
  } catch (e) {
    transport.abort();
    throw e;
  }
  const fitted = { ...options, maxMessageSize: transport.fitMessageSize(options.maxMessageSize) };
  return handshake(transport, fitted);
}

/**
 * Connect to an OpenMux server; resolves with a Session once WELCOME arrived.
 * `url`: `ws://` / `wss://` (WebSocket) or `webrtc+http://` / `webrtc+https://`
 * (the signaling endpoint; with `fallback: "ws://..."`, WebSocket is tried
 * when no DataChannel opened within `rtcTimeout` seconds or WebRTC failed).
 * Rejects with HandshakeError (`code` 4000 for a refused token) or TransportError.
 */
export async function connect(url, options = {}) {
  const o = withDefaults(options);
  if (/^wss?:/i.test(url)) return connectWebSocket(url, o);
  if (!/^webrtc\+https?:/i.test(url)) throw new TypeError(`unsupported OpenMux URL ${url}`);
  try {
    return await connectWebRTC(url, o);
  } catch (e) {
    if (!o.fallback || (e instanceof HandshakeError && e.code === CloseCode.AUTH_FAILED)) throw e;
    console.info(`openmux: WebRTC failed (${e.message}), falling back to ${o.fallback}`);
    return connectWebSocket(o.fallback, o);
  }
}
