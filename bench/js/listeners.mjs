// Broadcast fan-out listeners: one Node process opening N official
// socket.io-client connections (websocket only) to one server, recording
// when each `poll:updated` arrives against the `server_time` it carries.
//
// Environment: URL, N, WEB_CLIENT (npm package holding socket.io-client),
// TOKENS (a JSON file with one token per listener, optional), STATE_EVENT
// (wait for this event after connecting, optional), CONCURRENCY,
// ROUND_TIMEOUT_MS, LIFETIME_MS, EVENT (poll:updated or drop:updated). A
// round is a broadcast whose `poll.votes` (or the drop's units taken) is new.
// Writes JSON lines on stdout: {"type":"ready"...} once
// everyone is connected, then {"type":"round", "votes", "lat": [ms...],
// "missing"} per round. Exits when stdin closes or after LIFETIME_MS.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const env = process.env;
const require = createRequire(path.join(env.WEB_CLIENT, "package.json"));
const { io } = require("socket.io-client");
const N = Number(env.N);
const CONCURRENCY = Number(env.CONCURRENCY || 50);
const ROUND_TIMEOUT_MS = Number(env.ROUND_TIMEOUT_MS || 15000);
const tokens = env.TOKENS ? JSON.parse(readFileSync(env.TOKENS, "utf8")) : null;
const sockets = [];
const rounds = new Map(); // votes -> {lat: [], timer}

function say(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function finish(votes) {
  const round = rounds.get(votes);
  if (!round || round.done) return;
  round.done = true;
  clearTimeout(round.timer);
  say({ type: "round", votes, lat: round.lat, missing: N - round.lat.length });
}

// EVENT=drop:updated: a round is a drop whose `remaining` is new (one more
// unit in a cart), stamped by the stock flush's `drop.server_time`.
const EVENT = env.EVENT || "poll:updated";
function roundOf(data) {
  if (EVENT === "drop:updated") {
    const d = data.drop;
    return d && d.state === "live" ? [d.stock - d.remaining, d.server_time] : [0, null];
  }
  return [data.poll.votes, data.server_time];
}

function onUpdate(data) {
  const received = Date.now();
  const [votes, serverTime] = roundOf(data);
  if (!votes || typeof serverTime !== "number") return;
  let round = rounds.get(votes);
  if (!round) {
    round = { lat: [], done: false, timer: setTimeout(() => finish(votes), ROUND_TIMEOUT_MS) };
    rounds.set(votes, round);
  }
  if (round.done) return;
  round.lat.push(received - serverTime * 1000);
  if (round.lat.length === N) finish(votes);
}

function open(i) {
  return new Promise((resolve) => {
    const socket = io(env.URL, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: 30000,
      auth: tokens ? { token: tokens[i] } : {},
    });
    sockets.push(socket);
    socket.on(EVENT, onUpdate);
    const ready = env.STATE_EVENT || "connect";
    socket.once(ready, () => resolve(true));
    socket.once("connect_error", () => resolve(false));
  });
}

async function connectAll() {
  const started = Date.now();
  let next = 0;
  let failed = 0;
  async function worker() {
    while (next < N) {
      const i = next++;
      if (!(await open(i))) failed++;
    }
  }
  // Every 10 s while connecting: how many are in (the last one says how far
  // a connect phase that ran out of time got).
  const progress = setInterval(() => {
    say({ type: "progress", opened: next - failed, failed, ms: Date.now() - started });
  }, 10000);
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearInterval(progress);
  say({ type: "ready", connected: N - failed, failed, ms: Date.now() - started });
}

function quit() {
  for (const s of sockets) s.close();
  process.exit(0);
}

process.stdin.on("end", quit);
process.stdin.resume();
setTimeout(quit, Number(env.LIFETIME_MS || 600000)).unref();
await connectAll();
