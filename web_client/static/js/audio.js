// Audio over WebRTC: WHEP to listen to the room, WHIP to publish the
// microphone (RFC 9725: one POST of the full offer, answer in the body,
// session at `Location`, DELETE to end). Plus a level meter for either.
// A listener falls back to HLS (hls_audio.js) when WebRTC is full or fails.

import { candidatesFor, gatheringComplete } from "./sdp.js";
import { HlsPlayback, HlsUnavailable, canPlayHls } from "./hls_audio.js";

export class WhipWhepError extends Error {
  constructor(message, status, retryAfterS = null) {
    super(message);
    this.status = status;
    this.retryAfterS = retryAfterS;
  }
}

async function postOffer(url, sdp, token) {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: candidatesFor(sdp, url.hostname),
  });
}

/** POST the offer of `pc` to `endpoint`; set the answer; return the session URL.
 * A 307 to the node that serves the room is followed; when the browser drops
 * the token on that cross-origin redirect (the owner answers 401), the offer
 * is sent again straight to the owner with it. */
export async function negotiate(pc, endpoint, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  let url = new URL(endpoint, location.href);
  const sdp = pc.localDescription.sdp;
  let resp = await postOffer(url, sdp, token);
  if (resp.status === 401 && resp.redirected) {
    url = new URL(resp.url);
    resp = await postOffer(url, sdp, token);
  }
  if (resp.status !== 201) {
    const body = await resp.json().catch(() => null);
    const retryAfter = Number(resp.headers.get("Retry-After")) || null;
    throw new WhipWhepError(body?.error?.message || `the server answered ${resp.status}`, resp.status, retryAfter);
  }
  const session = new URL(resp.headers.get("Location") || url.href, resp.url || url).href;
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  return session;
}

export async function endSession(session, token) {
  if (!session) return;
  try {
    await fetch(session, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
  } catch {
    // The session ends on the server by itself when the peer goes away.
  }
}

/** A level meter over a MediaStream (or an audio node): `level()` is 0..1 (RMS, scaled). */
export class LevelMeter {
  constructor(context, stream, node = null) {
    this.source = node || context.createMediaStreamSource(stream);
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 512;
    this.source.connect(this.analyser);
    this.buffer = new Float32Array(this.analyser.fftSize);
  }

  level() {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const v of this.buffer) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buffer.length) * 4);
  }

  disconnect() {
    this.source.disconnect(this.analyser);
  }
}

/** Paint `meter()`'s level into `bar` (a <meter> or an element) each frame. */
export function animateLevel(bar, meter) {
  let running = true;
  const frame = () => {
    if (!running) return;
    const value = meter() ?? 0;
    if ("value" in bar) bar.value = value;
    else bar.style.setProperty("--level", String(value));
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  return () => {
    running = false;
    if ("value" in bar) bar.value = 0;
  };
}

const RETRY_MS = [1000, 2000, 4000, 8000, 10000];
// The server sends a frame every 20 ms, silence included: no packet for this
// long means the session is gone even if ICE has not noticed yet.
const STALL_MS = 5000;
const WATCH_MS = 1000;
// WebRTC that has not connected by then (UDP blocked?) gives way to HLS, as
// does a WHEP refusal for capacity (429) or this many failed attempts.
const CONNECT_MS = 10000;
const FAILURES_BEFORE_HLS = 2;
// On HLS, WebRTC is tried again this often; a free seat takes the listener back live.
const WEBRTC_AGAIN_MS = 20000;

/** Resolves once `pc` is connected; rejects when it fails, closes or takes `ms`. */
function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    if (pc.connectionState === "connected") return resolve();
    const timer = setTimeout(() => reject(new Error("no WebRTC connection")), ms);
    pc.addEventListener("connectionstatechange", () => {
      const state = pc.connectionState;
      if (state === "connected") resolve();
      else if (state === "failed" || state === "closed") reject(new Error(state));
      else return;
      clearTimeout(timer);
    });
  });
}

async function packetsReceived(pc) {
  let packets = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived || 0;
  });
  return packets;
}

/**
 * Listening to the room over WHEP, reconnecting when the connection drops,
 * and over HLS when WebRTC is full, blocked or keeps failing.
 * `onStatus(status, detail)`: connecting | playing | reconnecting | delayed |
 * waiting | stopped | error (`delayed`: playing over HLS, seconds behind).
 */
export class RoomListener {
  constructor({ room, tokenOf, iceServers, audio, onStatus }) {
    Object.assign(this, { room, tokenOf, iceServers, audio, onStatus });
    this.pc = null;
    this.session = null;
    this.context = null;
    this.meter = null;
    this.wanted = false;
    this.attempt = 0;
    this.failures = 0;
    this.retryTimer = null;
    this.hls = null; // the HLS playback once fallen back
    this.elementSource = null;
  }

  get mode() {
    return this.hls ? "hls" : "webrtc";
  }

  /** Call from a click: browsers only allow sound after a user gesture. */
  async start() {
    this.wanted = true;
    this.context = this.context || new AudioContext();
    await this.context.resume();
    await this.connect();
  }

  async connect() {
    this.close();
    if (typeof RTCPeerConnection === "undefined") return this.fallBack("WebRTC is not available here");
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => this.play(ev.streams[0] || new MediaStream([ev.track])));
    pc.addEventListener("connectionstatechange", () => this.watch(pc));
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState !== "connected") this.fallBack("no WebRTC connection");
    }, CONNECT_MS);
    try {
      this.session = await negotiate(pc, `/whep/${encodeURIComponent(this.room)}`, this.tokenOf());
    } catch (err) {
      if (pc !== this.pc) return;
      this.failures += 1;
      if (err.status === 429 || this.failures >= FAILURES_BEFORE_HLS) return this.fallBack(err.message);
      this.onStatus("error", err.message);
      this.retry();
    }
  }

  /** WebRTC is full or not working here: listen over HLS, a few seconds behind. */
  async fallBack(reason) {
    this.close();
    if (!this.wanted || !canPlayHls(this.audio)) {
      this.onStatus("error", reason);
      return;
    }
    const hls = new HlsPlayback({
      room: this.room,
      tokenOf: this.tokenOf,
      audio: this.audio,
      onFatal: (detail) => hls === this.hls && this.hlsAgain(detail),
    });
    this.hls = hls;
    try {
      await hls.start();
    } catch (err) {
      if (hls !== this.hls) return;
      const notLive = err instanceof HlsUnavailable && err.status === 404;
      this.onStatus(notLive ? "waiting" : "error", err.message);
      return this.hlsAgain(err.message);
    }
    if (hls !== this.hls) return;
    this.meterElement();
    this.onStatus("delayed", reason);
    this.scheduleWebrtcAgain();
  }

  scheduleWebrtcAgain() {
    clearTimeout(this.againTimer);
    if (typeof RTCPeerConnection === "undefined") return;
    this.againTimer = setTimeout(() => this.tryWebrtcAgain(), WEBRTC_AGAIN_MS);
  }

  /** On HLS: a WHEP session that connects takes over from HLS (back live). */
  async tryWebrtcAgain() {
    if (!this.wanted || !this.hls) return;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.addTransceiver("audio", { direction: "recvonly" });
    let stream = null;
    pc.addEventListener("track", (ev) => {
      stream = ev.streams[0] || new MediaStream([ev.track]);
    });
    let session = null;
    try {
      session = await negotiate(pc, `/whep/${encodeURIComponent(this.room)}`, this.tokenOf());
      await connected(pc, CONNECT_MS);
    } catch {
      pc.close();
      if (session) endSession(session, this.tokenOf());
      if (this.hls) this.scheduleWebrtcAgain(); // still full or blocked: stay on HLS
      return;
    }
    if (!this.wanted || !this.hls || !stream) {
      pc.close();
      endSession(session, this.tokenOf());
      return;
    }
    const hls = this.hls;
    this.hls = null;
    hls.stop();
    Object.assign(this, { pc, session, attempt: 0, failures: 0 });
    pc.addEventListener("connectionstatechange", () => this.watch(pc));
    this.play(stream);
    this.onStatus("playing");
    this.watchPackets(pc);
  }

  hlsAgain(reason) {
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.wanted && this.fallBack(reason), delay);
  }

  /** The level of what the <audio> element plays (HLS has no MediaStream). */
  meterElement() {
    if (!this.context) return;
    if (!this.elementSource) {
      this.elementSource = this.context.createMediaElementSource(this.audio);
      this.elementSource.connect(this.context.destination);
    }
    this.meter?.disconnect();
    this.meter = new LevelMeter(this.context, null, this.elementSource);
  }

  play(stream) {
    this.audio.srcObject = stream;
    this.audio.play().catch(() => this.onStatus("error", "Press Listen to start the sound"));
    this.meter?.disconnect();
    this.meter = new LevelMeter(this.context, stream);
  }

  watch(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    if (state === "connected") {
      this.attempt = 0;
      this.failures = 0;
      clearTimeout(this.connectTimer);
      this.onStatus("playing");
      this.watchPackets(pc);
    } else if (state === "failed" || state === "closed") {
      this.failures += 1;
      if (this.failures >= FAILURES_BEFORE_HLS) return this.fallBack("the WebRTC connection keeps failing");
      this.retry();
    } else if (state === "disconnected") {
      // Often heals by itself; if not, ICE moves on to "failed".
      this.onStatus("reconnecting");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => pc.connectionState === "disconnected" && this.retry(), 4000);
    }
  }

  /** Reconnect when packets stop arriving (see STALL_MS). */
  watchPackets(pc) {
    clearInterval(this.watchdog);
    let last = -1;
    let since = performance.now();
    this.watchdog = setInterval(async () => {
      if (pc !== this.pc) return clearInterval(this.watchdog);
      const packets = await packetsReceived(pc);
      if (packets !== last) {
        last = packets;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        clearInterval(this.watchdog);
        this.retry();
      }
    }, WATCH_MS);
  }

  retry() {
    if (!this.wanted) return;
    clearTimeout(this.retryTimer);
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.onStatus("reconnecting");
    this.retryTimer = setTimeout(() => this.wanted && this.connect(), delay);
  }

  level() {
    return this.meter ? this.meter.level() : 0;
  }

  close() {
    clearInterval(this.watchdog);
    clearTimeout(this.connectTimer);
    clearTimeout(this.againTimer);
    const { pc, session, hls } = this;
    this.pc = null;
    this.session = null;
    this.hls = null;
    hls?.stop();
    if (pc) pc.close();
    if (session) endSession(session, this.tokenOf());
  }

  stop() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.close();
    this.meter?.disconnect();
    this.meter = null;
    this.audio.pause();
    this.audio.srcObject = null;
    this.attempt = 0;
    this.onStatus("stopped");
  }
}

// Publishing again after the server closed the session (the room's audio
// moved to another process) or the connection failed: quick, then slower.
const PUBLISH_RETRY_MS = [500, 1000, 2000, 4000, 8000];

/**
 * Publishing the microphone over WHIP, publishing again by itself when its
 * peer fails or the server closes it (bounded backoff; a 503's Retry-After
 * is honoured). `onStatus(status, detail)`: connecting | live | reconnecting
 * | stopped | error.
 */
export class MicPublisher {
  constructor({ room, tokenOf, iceServers, onStatus }) {
    Object.assign(this, { room, tokenOf, iceServers, onStatus });
    this.pc = null;
    this.session = null;
    this.stream = null;
    this.context = null;
    this.meter = null;
    this.wanted = false;
    this.attempt = 0;
    this.retryTimer = null;
  }

  /** On air, or getting back on air. */
  get live() {
    return this.wanted;
  }

  async start() {
    this.onStatus("connecting");
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    this.context = this.context || new AudioContext();
    await this.context.resume();
    this.meter = new LevelMeter(this.context, this.stream);
    try {
      await this.connect();
    } catch (err) {
      this.release();
      throw err;
    }
    this.wanted = true;
    this.attempt = 0;
  }

  async connect() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    for (const track of this.stream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    pc.addEventListener("connectionstatechange", () => this.watch(pc));
    const session = await negotiate(pc, `/whip/${encodeURIComponent(this.room)}`, this.tokenOf());
    if (pc !== this.pc) {
      endSession(session, this.tokenOf());
      return;
    }
    this.session = session;
    // The server ending the session (DTLS close) shows here before ICE notices.
    for (const sender of pc.getSenders()) sender.transport?.addEventListener("statechange", () => this.watch(pc));
  }

  watch(pc) {
    if (pc !== this.pc) return;
    const state = pc.connectionState;
    const dtls = pc.getSenders()[0]?.transport?.state;
    if (state === "failed" || state === "closed" || dtls === "closed" || dtls === "failed") {
      this.retry("The connection to the server was lost");
    } else if (state === "connected") {
      this.attempt = 0;
      this.onStatus("live");
    } else if (state === "disconnected") {
      // Often heals by itself; if not, publish again.
      this.onStatus("reconnecting");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => pc === this.pc && pc.connectionState === "disconnected" && this.retry(), 4000);
    }
  }

  retry(detail = null, delayMs = null) {
    if (!this.wanted) return;
    clearTimeout(this.retryTimer);
    const { pc, session } = this;
    this.pc = null;
    this.session = null;
    pc?.close();
    if (session) endSession(session, this.tokenOf());
    const delay = delayMs ?? PUBLISH_RETRY_MS[Math.min(this.attempt, PUBLISH_RETRY_MS.length - 1)];
    this.attempt += 1;
    this.onStatus("reconnecting", detail ? `${detail} (attempt ${this.attempt})` : `attempt ${this.attempt}`);
    this.retryTimer = setTimeout(() => this.republish(), delay);
  }

  async republish() {
    if (!this.wanted) return;
    try {
      await this.connect();
    } catch (err) {
      const wait = err.retryAfterS ? err.retryAfterS * 1000 : null;
      this.retry(err.message, wait);
    }
  }

  level() {
    return this.meter ? this.meter.level() : 0;
  }

  release() {
    clearTimeout(this.retryTimer);
    this.pc?.close();
    this.pc = null;
    this.meter?.disconnect();
    this.meter = null;
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.stream = null;
  }

  async stop() {
    this.wanted = false;
    this.attempt = 0;
    const session = this.session;
    this.session = null;
    this.release();
    await endSession(session, this.tokenOf());
    this.onStatus("stopped");
  }
}
