// The Socket.IO connection of one room page. Reconnects by itself; every
// (re)connect gets a fresh `room:state`, which replaces what the page knew.

import { io } from "/vendor/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 10000;

export class RoomConnection {
  /**
   * @param {import('./store.js').Store} store
   * @param {() => string} tokenOf the current token (it may change: a listener
   *   invited to the stage gets a speaker token)
   * @param {() => boolean} fallBack called when the token is refused: true
   *   when the page switched to another token worth a retry
   */
  constructor(store, tokenOf, fallBack = () => false) {
    this.store = store;
    this.fallBack = fallBack;
    this.expired = null;
    this.socket = io({
      auth: (cb) => cb({ token: tokenOf() }),
      // A websocket stays on the worker it reached; long-polling only where a
      // websocket cannot pass (docs/operations.md "Workers").
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    this.socket.on("connect", () => store.set("connection", { connection: "connected", error: null }));
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (err) => this.onConnectError(err));
    this.socket.on("room:state", (state) => store.snapshot(state));
    // The token ran out: the server says so, then closes the connection.
    this.socket.on("session:expired", (d) => (this.expired = d?.message || "your access has expired"));
    this.socket.onAny((event, data) => {
      if (event !== "room:state") store.apply(event, data);
    });
  }

  onDisconnect(reason) {
    if (this.expired) {
      this.store.set("connection", { connection: "refused", error: this.expired });
      return;
    }
    this.store.set("connection", { connection: "reconnecting" });
    // The server closed us on purpose; Socket.IO will not retry by itself.
    if (reason === "io server disconnect") setTimeout(() => this.socket.connect(), 1000);
  }

  onConnectError(err) {
    const data = refusal(err);
    if (data && data.code === "unauthorized") {
      if (this.fallBack()) {
        setTimeout(() => this.socket.connect(), 200);
        return;
      }
      this.store.set("connection", { connection: "refused", error: data.message || "unauthorized" });
      this.socket.disconnect();
      return;
    }
    this.store.set("connection", { connection: "reconnecting" });
  }

  on(event, fn) {
    this.socket.on(event, fn);
  }

  /** Send one event; resolves to the server's answer `{ok, ...}`, never throws. */
  async call(event, payload = {}) {
    try {
      return await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    } catch {
      return { ok: false, error: { code: "unavailable", message: "The server did not answer. Try again." } };
    }
  }
}

/**
 * The `{code, message}` of a refused connection: Socket.IO puts it in
 * `err.data`; a server that passed it as the message sends its text form.
 */
export function refusal(err) {
  if (err?.data?.code) return err.data;
  const text = String(err?.message || "");
  const code = /['"]code['"]:\s*['"](\w+)['"]/.exec(text);
  if (!code) return null;
  const message = /['"]message['"]:\s*['"](.*)['"]\s*\}/.exec(text);
  return { code: code[1], message: message ? message[1] : code[1] };
}

/** The message to show for a refused call. */
export function errorText(answer) {
  return answer?.error?.message || "That did not work. Try again.";
}
