// The room's sound over HLS (`GET /hls/{room}/index.m3u8?token=...`), for
// when WebRTC is full (WHEP 429), blocked or failing. Safari plays HLS by
// itself; elsewhere hls.js (npm `hls.js`, served from /vendor/) feeds the
// <audio> element through Media Source Extensions. HLS is a few seconds
// behind the room; the page says so, and the shop stays live over Socket.IO.

const HLS_MODULE = "/vendor/hls.light.min.mjs";
const HLS_WORKER = "/vendor/hls.worker.js";
const NATIVE_HLS = "application/vnd.apple.mpegurl";

export class HlsUnavailable extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export function playlistUrl(room, token) {
  return new URL(`/hls/${encodeURIComponent(room)}/index.m3u8?token=${encodeURIComponent(token)}`, location.href).href;
}

/**
 * Safari's own HLS (iPhones without Media Source Extensions need it). Chromium
 * now answers canPlayType too, but its young built-in HLS failed to parse our
 * live stream now and then in tests: Chromium (the one with
 * navigator.userAgentData) gets hls.js.
 */
function nativeHls(audio) {
  return Boolean(audio.canPlayType(NATIVE_HLS)) && !("userAgentData" in navigator);
}

/** True when this browser can play HLS at all (natively, or hls.js on MSE). */
export function canPlayHls(audio) {
  return Boolean(audio.canPlayType(NATIVE_HLS)) || "MediaSource" in window || "ManagedMediaSource" in window;
}

/** One HLS playback of the room into `audio`; `onFatal(message)` when it breaks. */
export class HlsPlayback {
  constructor({ room, token, audio, onFatal }) {
    Object.assign(this, { room, token, audio, onFatal });
    this.hls = null;
  }

  /** Throws HlsUnavailable (404: the room is not live yet; 401: the token). */
  async start() {
    const url = playlistUrl(this.room, this.token);
    const probe = await fetch(url, { cache: "no-store" });
    if (!probe.ok) {
      const body = await probe.json().catch(() => null);
      throw new HlsUnavailable(body?.error?.message || `the server answered ${probe.status}`, probe.status);
    }
    this.audio.srcObject = null;
    if (nativeHls(this.audio)) {
      this.audio.src = url; // Safari, iOS
    } else {
      const { default: Hls } = await import(HLS_MODULE);
      if (!Hls.isSupported()) throw new HlsUnavailable("this browser cannot play HLS", 0);
      const hls = new Hls({ workerPath: HLS_WORKER, liveSyncDurationCount: 3, manifestLoadingMaxRetry: 6 });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal && this.hls === hls) this.onFatal(data.details || "the stream stopped");
      });
      hls.loadSource(url);
      hls.attachMedia(this.audio);
    }
    await this.audio.play();
  }

  /** Seconds behind the newest audio in the playlist (null when unknown). */
  latency() {
    return this.hls && Number.isFinite(this.hls.latency) ? this.hls.latency : null;
  }

  stop() {
    const hls = this.hls;
    this.hls = null;
    hls?.destroy();
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
  }
}
