// input.js: the person's mouse, keyboard and touch on the agent's picture -> packed input.
//
// Only in interact mode (the client sends nothing until pointer/button are
// open). Positions follow the scaling rule of docs/protocol/graphical.md §7:
// agent_x = floor(client_x / client_width * agent_width) over the picture's
// on-screen rectangle (the canvas is sized to fit, so it has no bars).
// Presses carry their position, so a lost move never misplaces a click.

import { deltaToAgent, modifiersOf, toAgent } from "/static/vroom.js";

const LINE = 16; // px per wheel "line" (deltaMode 1)

export class InputForwarder {
  constructor(client, surface) {
    this.client = client;
    this.surface = surface;
    this.touchIds = new Map(); // pointerId -> touch id 0..9
    this.keysDown = new Map(); // code||key -> key sent
    this.enabled = false;
    this._listeners = [];
    this._install();
  }

  get active() { return this.enabled && this.client.inputReady; }

  setEnabled(on) {
    if (!on && this.enabled) this.releaseAll();
    this.enabled = on;
  }

  /** Leaving interact / losing focus: let go of every key we pressed. */
  releaseAll() {
    for (const [id, key] of this.keysDown) this.client.keyUp(key, id, 0);
    this.keysDown.clear();
    for (const id of this.touchIds.values()) this.client.touchEnd(id);
    this.touchIds.clear();
  }

  agentPoint(e) {
    const rect = this.surface.getBoundingClientRect();
    const agent = this.client.agent || { width: rect.width, height: rect.height };
    return toAgent(e.clientX - rect.left, e.clientY - rect.top, rect, agent);
  }

  _on(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this._listeners.push([target, type, fn, opts]);
  }

  destroy() {
    for (const [t, type, fn, opts] of this._listeners) t.removeEventListener(type, fn, opts);
    this._listeners = [];
  }

  _install() {
    const s = this.surface;
    this._on(s, "pointermove", (e) => {
      if (!this.active) return;
      if (e.pointerType === "touch") return this._touch(e, "move");
      const [x, y] = this.agentPoint(e);
      if (document.pointerLockElement === s) {
        const rect = s.getBoundingClientRect();
        const [dx, dy] = deltaToAgent(e.movementX, e.movementY, rect, this.client.agent);
        this.client.mouseMoveRel(dx, dy);
      } else {
        this.client.mouseMove(x, y);
      }
    });
    this._on(s, "pointerdown", (e) => {
      if (!this.active) return;
      s.focus({ preventScroll: true });
      e.preventDefault();
      s.setPointerCapture(e.pointerId);
      if (e.pointerType === "touch") return this._touch(e, "start");
      const [x, y] = this.agentPoint(e);
      if (e.button >= 0 && e.button <= 4) this.client.mouseDown(x, y, e.button);
    });
    const up = (e) => {
      if (!this.active) return;
      if (e.pointerType === "touch") return this._touch(e, "end");
      const [x, y] = this.agentPoint(e);
      if (e.button >= 0 && e.button <= 4) this.client.mouseUp(x, y, e.button);
    };
    this._on(s, "pointerup", up);
    this._on(s, "pointercancel", (e) => { if (e.pointerType === "touch") this._touch(e, "end"); });
    this._on(s, "contextmenu", (e) => { if (this.enabled) e.preventDefault(); });
    this._on(s, "wheel", (e) => {
      if (!this.active) return;
      e.preventDefault();
      let { deltaX: dx, deltaY: dy } = e;
      if (e.deltaMode === 1) { dx *= LINE; dy *= LINE; }
      else if (e.deltaMode === 2) { dx *= s.clientWidth; dy *= s.clientHeight; }
      const [x, y] = this.agentPoint(e);
      this.client.mouseMove(x, y); // scroll where the pointer is, even if a move was lost
      const [adx, ady] = deltaToAgent(dx, dy, s.getBoundingClientRect(), this.client.agent);
      this.client.scroll(adx, ady);
    }, { passive: false });
    this._on(s, "keydown", (e) => this._key(e, true));
    this._on(s, "keyup", (e) => this._key(e, false));
    this._on(s, "blur", () => { if (this.active) this.releaseAll(); });
    this._on(s, "paste", (e) => {
      if (!this.active) return;
      e.preventDefault();
      const text = e.clipboardData ? e.clipboardData.getData("text/plain") : "";
      if (text) this.client.paste(text);
    });
  }

  _key(e, down) {
    if (!this.active) return;
    // Paste goes as PASTE (the text of the person's clipboard, typed at the
    // agent's focus), so let the browser fire its paste event.
    if (down && (e.ctrlKey || e.metaKey) && !e.altKey && (e.key === "v" || e.key === "V")) return;
    e.preventDefault();
    const id = e.code || e.key;
    if (down) {
      this.keysDown.set(id, e.key);
      this.client.keyDown(e.key, e.code, modifiersOf(e));
    } else {
      const key = this.keysDown.get(id) || e.key;
      this.keysDown.delete(id);
      this.client.keyUp(key, e.code, modifiersOf(e));
    }
  }

  _touch(e, phase) {
    e.preventDefault();
    let id = this.touchIds.get(e.pointerId);
    if (phase === "start") {
      if (id === undefined) {
        const used = new Set(this.touchIds.values());
        id = 0;
        while (used.has(id)) id++;
        this.touchIds.set(e.pointerId, id);
      }
      const [x, y] = this.agentPoint(e);
      this.client.touchStart(id, x, y, Math.round((e.pressure || 0.5) * 255));
    } else if (id !== undefined && phase === "move") {
      const [x, y] = this.agentPoint(e);
      this.client.touchMove(id, x, y, Math.round((e.pressure || 0.5) * 255));
    } else if (id !== undefined) {
      this.touchIds.delete(e.pointerId);
      this.client.touchEnd(id);
    }
  }
}
