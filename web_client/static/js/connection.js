// The Socket.IO connection of one room page. Reconnects by itself; every
// (re)connect gets a fresh `room:state`, which replaces what the page knew.

import { io } from "/vendor/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 10000;

export class RoomConnection {
  /**
   * @param {import('./store.js').Store} store
   * @param {() => string} tokenOf the current token (it may change: a listener
   *   invited to the stage gets a speaker token)
   */
  constructor(store, tokenOf) {
    this.store = store;
    this.socket = io({
      auth: (cb) => cb({ token: tokenOf() }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    this.socket.on("connect", () => store.set("connection", { connection: "connected", error: null }));
    this.socket.on("disconnect", (reason) => this.onDisconnect(reason));
    this.socket.on("connect_error", (err) => this.onConnectError(err));
    this.socket.on("room:state", (state) => store.snapshot(state));
    this.socket.onAny((event, data) => {
      if (event !== "room:state") store.apply(event, data);
    });
  }

  onDisconnect(reason) {
    this.store.set("connection", { connection: "reconnecting" });
    // The server closed us on purpose; Socket.IO will not retry by itself.
    if (reason === "io server disconnect") setTimeout(() => this.socket.connect(), 1000);
  }

  onConnectError(err) {
    const data = refusal(err);
    if (data && data.code === "unauthorized") {
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
