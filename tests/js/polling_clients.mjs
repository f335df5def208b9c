// Several official Socket.IO JavaScript clients held to long-polling against
// one node of workers: each connects, votes in a poll (a POST), and waits for
// the `poll:updated` that shows its vote (a GET), ROUNDS times.
//
// Input (environment): DROPROOM_URL, TOKENS (comma-separated listener tokens
// of the room), POLL_IDS (comma-separated, one per round), WEB_CLIENT,
// TIMEOUT_MS. Output: one JSON line on stdout, per client: its engine.io
// session ids (one unless it had to connect again), its transport, how many
// rounds it saw through, and its disconnect reasons.
import { createRequire } from "node:module";
import path from "node:path";

const env = process.env;
const require = createRequire(path.join(env.WEB_CLIENT, "package.json"));
const { io } = require("socket.io-client");
const TIMEOUT_MS = Number(env.TIMEOUT_MS || 10000);

function once(socket, event, predicate = () => true) {
  return new Promise((resolve) => {
    const handler = (data) => {
      if (predicate(data)) {
        socket.off(event, handler);
        resolve(data);
      }
    };
    socket.on(event, handler);
  });
}

async function client(token, polls) {
  const socket = io(env.DROPROOM_URL, {
    auth: { token },
    transports: ["polling"],
    forceNew: true,
    reconnectionDelay: 200,
    timeout: TIMEOUT_MS,
  });
  const seen = { sids: [], disconnects: [], rounds: 0, transport: null };
  socket.on("connect", () => seen.sids.push(socket.io.engine.id));
  socket.on("disconnect", (reason) => seen.disconnects.push(reason));
  await once(socket, "room:state");
  for (const pollId of polls) {
    const ack = await socket.timeout(TIMEOUT_MS).emitWithAck("poll:vote", { poll_id: pollId, option: 0 });
    if (!ack.ok) throw new Error(JSON.stringify(ack));
    await once(socket, "poll:updated", (d) => d.poll.id === pollId);
    seen.rounds += 1;
  }
  seen.transport = socket.io.engine.transport.name;
  const result = { ...seen, disconnects: [...seen.disconnects] };
  socket.close();
  return result;
}

const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(2);
}, TIMEOUT_MS);

try {
  const polls = env.POLL_IDS.split(",");
  const clients = await Promise.all(env.TOKENS.split(",").map((t) => client(t, polls)));
  process.stdout.write(JSON.stringify({ clients }) + "\n");
  clearTimeout(watchdog);
  process.exit(0); // a long-poll still open would keep Node up until it ends
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + "\n");
  process.exit(1);
}
