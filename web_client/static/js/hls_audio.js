// The room's sound over HLS (`GET /hls/{room}/index.m3u8?token=...`), for
// when WebRTC is full (WHEP 429), blocked or failing. Safari plays HLS by
// itself; elsewhere hls.js (npm `hls.js`, served from /vendor/) feeds the
// <audio> element through Media Source Extensions. HLS is a few seconds
// behind the room; the page says so, and the shop stays live over Socket.IO.
//
// The playlist URL passes through CDNs and their logs, so it never carries
// the listener's room token: the page asks for an HLS link
// (`POST /api/v1/rooms/{room}/hls-link`, an HLS-only token that names the
// room and nothing else) and renews it before it runs out; hls.js reloads
// the live playlist through the newest link.

const HLS_MODULE = "/vendor/hls.light.min.mjs";
const HLS_WORKER = "/vendor/hls.worker.js";
const NATIVE_HLS = "application/vnd.apple.mpegurl";

export class HlsUnavailable extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// renew the link when this share of its life is left (at least RENEW_MIN_MS before)
const RENEW_AT = 0.25;
const RENEW_MIN_MS = 5000;
const RENEW_RETRY_MS = 5000;

/** An HLS link of the room: `{url, expiresAt}` (ms), for a room token. */
export async function hlsLink(room, token) {
  const resp = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/hls-link`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
    cache: "no-store",
  });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new HlsUnavailable(body?.error?.message || `the server answered ${resp.status}`, resp.status);
  // on this device's clock: a phone whose time is off still renews in time
  return { url: new URL(body.url, location.href).href, expiresAt: Date.now() + body.expires_in * 1000 };
}

function isPlaylist(url) {
  return new URL(url, location.href).pathname.endsWith("/index.m3u8");
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
  /** `tokenOf()`: the listener's room token now (it may be renewed meanwhile). */
  constructor({ room, tokenOf, audio, onFatal }) {
    Object.assign(this, { room, tokenOf, audio, onFatal });
    this.hls = null;
    this.link = null;
    this.renewTimer = null;
    this.stopped = false;
    this.nativeError = null; // Safari's own player: its <audio> error listener
  }

  /** Throws HlsUnavailable (404: the room is not live yet; 401: the token). */
  async start() {
    const link = await hlsLink(this.room, this.tokenOf());
    if (this.stopped) return; // stopped while asking: start nothing
    this.link = link;
    const url = link.url;
    const probe = await fetch(url, { cache: "no-store" });
    if (!probe.ok) {
      const body = await probe.json().catch(() => null);
      throw new HlsUnavailable(body?.error?.message || `the server answered ${probe.status}`, probe.status);
    }
    if (this.stopped) return;
    this.audio.srcObject = null;
    if (nativeHls(this.audio)) {
      this.nativeError = () => this.onFatal("the stream stopped");
      this.audio.addEventListener("error", this.nativeError);
      this.audio.src = url; // Safari, iOS
    } else {
      const { default: Hls } = await import(HLS_MODULE);
      if (this.stopped) return;
      if (!Hls.isSupported()) throw new HlsUnavailable("this browser cannot play HLS", 0);
      const hls = new Hls({
        workerPath: HLS_WORKER,
        liveSyncDurationCount: 3,
        manifestLoadingMaxRetry: 6,
        // every reload of the live playlist goes out with the newest link
        xhrSetup: (xhr, requested) => {
          if (isPlaylist(requested) && this.link) xhr.open("GET", this.link.url, true);
        },
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal && this.hls === hls) this.onFatal(data.details || "the stream stopped");
      });
      hls.loadSource(url);
      hls.attachMedia(this.audio);
    }
    this.scheduleRenew();
    await this.audio.play();
  }

  /** A fresh link before this one runs out (Safari's own player keeps its URL:
   * it gets the new one set, a moment of silence at each renewal). */
  scheduleRenew() {
    clearTimeout(this.renewTimer);
    if (this.stopped || !this.link) return;
    const left = this.link.expiresAt - Date.now();
    const wait = Math.max(1000, Math.min(left * (1 - RENEW_AT), left - RENEW_MIN_MS));
    this.renewTimer = setTimeout(() => this.renew(), wait);
  }

  async renew() {
    if (this.stopped) return;
    let link;
    try {
      link = await hlsLink(this.room, this.tokenOf());
    } catch (err) {
      if (this.stopped) return;
      if (err.status === 401 || err.status === 403) {
        this.onFatal(err.message); // the room token no longer opens the room
        return;
      }
      this.renewTimer = setTimeout(() => this.renew(), RENEW_RETRY_MS); // network, 5xx
      return;
    }
    if (this.stopped) return;
    this.link = link;
    if (!this.hls) {
      this.audio.src = link.url; // Safari's own player: reload on the new link
      this.audio.play().catch(() => {});
    }
    this.scheduleRenew();
  }

  /** Seconds behind the newest audio in the playlist (null when unknown). */
  latency() {
    return this.hls && Number.isFinite(this.hls.latency) ? this.hls.latency : null;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    if (this.nativeError) this.audio.removeEventListener("error", this.nativeError);
    this.nativeError = null;
    const hls = this.hls;
    this.hls = null;
    hls?.destroy();
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
  }
}
