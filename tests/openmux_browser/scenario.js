// Browser-side scenarios of test_browser.py; each gets the openmux.js module first.

const text = (bytes) => new TextDecoder().decode(bytes);

function pattern(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7) & 255;
  return out;
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function command(ctl, op, args = {}) {
  await ctl.send(2, JSON.stringify({ op, ...args }));
  for (;;) {
    const m = await ctl.recv();
    if (m.type === 3) return JSON.parse(text(m.data));
  }
}

/** Handshake, echo (small and fragmented), channels both ways, ping, close. */
export async function echo(omux, url, options) {
  const s = await omux.connect(url, { channels: ["echo", "ctl"], application: "browser-test/1", ...options });
  const out = { kind: s.kind, maxMessageSize: s.maxMessageSize, granted: [...s.channels.keys()].sort() };
  const e = s.channel("echo");
  await e.send(1, "hello");
  const m1 = await e.recv();
  out.small = [m1.type, text(m1.data)];
  const big = pattern(300000); // over maxMessageSize: sent as 5 fragments, reassembled twice
  await e.send(9, big);
  const m2 = await e.recv();
  out.large = [m2.type, m2.data.length, same(m2.data, big)];
  const dyn = await s.openChannel("dyn-unreliable", { reliable: false, ordered: false });
  await dyn.send(4, "datagram-ish");
  const m3 = await dyn.recv();
  out.unreliable = [dyn.id, text(m3.data)];
  const opened = await command(s.channel("ctl"), "open", { name: "from-server" });
  const incoming = await s.accept();
  await incoming.send(5, "server-opened");
  const m4 = await incoming.recv();
  out.serverOpened = [opened.ok, incoming.name, incoming.id === opened.id, text(m4.data)];
  try {
    await s.openChannel("deny-me");
    out.rejected = null;
  } catch (err) {
    out.rejected = [err.name, err.code];
  }
  await dyn.close();
  out.channelsAfterClose = (await command(s.channel("ctl"), "channels")).channels;
  out.rtt = await s.ping();
  await s.close();
  out.closed = await s.closed;
  return out;
}

/** connect() must fail; report how. */
export async function refused(omux, url, options) {
  try {
    await omux.connect(url, { channels: ["echo"], ...options });
    return { ok: true };
  } catch (err) {
    return { ok: false, name: err.name, code: err.code };
  }
}

/** Which transport connect() ended on, and whether it works. */
export async function which(omux, url, options) {
  const s = await omux.connect(url, { channels: ["echo"], ...options });
  const e = s.channel("echo");
  await e.send(1, "ping");
  const m = await e.recv();
  await s.close();
  return { kind: s.kind, echoed: text(m.data) };
}

/** The server closes the session: `closed` resolves with its code, by the peer. */
export async function closedByServer(omux, url, options) {
  const s = await omux.connect(url, { channels: ["ctl"], ...options });
  await s.channel("ctl").send(2, JSON.stringify({ op: "bye", code: 4321, reason: "go away" }));
  const closed = await s.closed;
  let sendError = null;
  try {
    await s.channel("ctl");
  } catch (err) {
    sendError = err.message;
  }
  return { closed, sendError };
}

/** Connect to a scripted (hostile) server and report how the session ended. */
export async function hostile(omux, url, options) {
  let s;
  try {
    s = await omux.connect(url, {
      channels: [{ name: "u", reliable: false, ordered: false }, "echo"], closeTimeout: 0.2, ...options,
    });
  } catch (err) {
    return { connectError: [err.name, err.code] };
  }
  const errors = [];
  s.onerror = (body) => errors.push(body.code);
  const closed = await s.closed;
  return { closed, errors };
}
