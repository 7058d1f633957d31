// The person's side of the media tests: a bare RTCPeerConnection in Chromium.
// Python drives it with page.evaluate(): start() -> offer SDP, answer(sdp),
// stats(), pixel(x, y), level().
window.rtc = {
  pc: null, video: null, audio: null, micLevel: 0,
  async start(opts = {}) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    if (opts.noH264) {
      const codecs = RTCRtpReceiver.getCapabilities("video").codecs.filter((c) => !/h264/i.test(c.mimeType));
      video.setCodecPreferences(codecs);
    }
    if (opts.mic) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    } else if (opts.audio !== false) {
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    pc.createDataChannel("omux/control", { negotiated: true, id: 0, protocol: "openmux/0.1" });
    this.video = document.createElement("video");
    this.video.muted = true; this.video.autoplay = true; this.video.playsInline = true;
    document.body.appendChild(this.video);
    this.audio = document.createElement("audio");
    this.audio.autoplay = true;
    document.body.appendChild(this.audio);
    pc.ontrack = (event) => {
      const stream = new MediaStream([event.track]);
      if (event.track.kind === "video") this.video.srcObject = stream;
      else this.audio.srcObject = stream;
    };
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== "complete") {
      await new Promise((resolve) => {
        const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
        pc.addEventListener("icegatheringstatechange", done);
        setTimeout(resolve, 2000);
      });
    }
    return pc.localDescription.sdp;
  },
  async answer(sdp) { await this.pc.setRemoteDescription({ type: "answer", sdp }); },
  async stats() {
    const out = { state: this.pc ? this.pc.connectionState : "none", video: null, audio: null };
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    const codecs = {};
    report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      const entry = {
        codec: codecs[s.codecId] || null, packets: s.packetsReceived || 0,
        framesDecoded: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0,
        audioLevel: s.audioLevel || 0, energy: s.totalAudioEnergy || 0, samples: s.totalSamplesReceived || 0,
      };
      if (s.kind === "video") out.video = entry; else out.audio = entry;
    });
    return out;
  },
  pixel(x, y) {
    const v = this.video;
    if (!v || !v.videoWidth) return null;
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth; canvas.height = v.videoHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(v, 0, 0);
    return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
  },
  close() { if (this.pc) this.pc.close(); this.pc = null; },
};
