// Drives a droproom room through the official Socket.IO JavaScript client.
//
// Input (environment): DROPROOM_URL, TOKEN (a listener of the room), POLL_ID,
// OPTION, FORGED (a token signed with another key), WEB_CLIENT (the npm
// package holding socket.io-client). Output: one JSON line on stdout with
// what was seen; the Python test judges it. Exits by itself within TIMEOUT_MS.
import { createRequire } from "node:module";
import path from "node:path";

const env = process.env;
const require = createRequire(path.join(env.WEB_CLIENT, "package.json"));
const { io } = require("socket.io-client");
const TIMEOUT_MS = Number(env.TIMEOUT_MS || 10000);

function connect(token) {
  return io(env.DROPROOM_URL, {
    auth: { token },
    transports: ["websocket"],
    reconnection: false,
    timeout: TIMEOUT_MS,
  });
}

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

async function voteAndWatch() {
  const socket = connect(env.TOKEN);
  const connected = once(socket, "connect");
  const state = await once(socket, "room:state");
  await connected;
  const transport = socket.io.engine.transport.name;
  const ack = await socket
    .timeout(TIMEOUT_MS)
    .emitWithAck("poll:vote", { poll_id: env.POLL_ID, option: Number(env.OPTION) });
  const wanted = JSON.stringify(ack.poll && ack.poll.tallies);
  const update = await once(
    socket,
    "poll:updated",
    (d) => d.poll.id === env.POLL_ID && JSON.stringify(d.poll.tallies) === wanted,
  );
  socket.close();
  return {
    transport,
    state: { server_time: state.server_time, room: state.room, me: state.me },
    ack,
    update,
  };
}

async function forged() {
  const socket = connect(env.FORGED);
  const err = await once(socket, "connect_error");
  socket.close();
  return { message: err.message, data: err.data };
}

const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(2);
}, TIMEOUT_MS);

try {
  const result = { vote: await voteAndWatch(), forged: await forged(), now: Date.now() / 1000 };
  process.stdout.write(JSON.stringify(result) + "\n");
  clearTimeout(watchdog);
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + "\n");
  process.exit(1);
}
