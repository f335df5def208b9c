// The server's clock, as seen from this page: every snapshot and drop event
// carries `server_time`; countdowns use it, never the device's own clock.

export class ServerClock {
  constructor() {
    this.offset = 0; // server seconds minus local seconds
    this.synced = false;
    this.listeners = new Set();
    this.timer = null;
  }

  /** Learn the offset from a message the server stamped with `serverTime`. */
  sync(serverTime) {
    if (typeof serverTime !== "number") return;
    this.offset = serverTime - Date.now() / 1000;
    this.synced = true;
  }

  now() {
    return Date.now() / 1000 + this.offset;
  }

  /** Call `fn(now)` about four times a second while anyone listens. */
  onTick(fn) {
    this.listeners.add(fn);
    if (!this.timer) {
      this.timer = setInterval(() => {
        const now = this.now();
        for (const listener of this.listeners) listener(now);
      }, 250);
    }
    return () => this.listeners.delete(fn);
  }
}
