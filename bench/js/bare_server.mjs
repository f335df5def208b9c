// A bare Node socket.io server doing the same broadcast as droproom: every
// connection joins one room; a controller's `bench:go` makes the server emit
// a poll-shaped `poll:updated` (with `server_time`) to that room.
//
// Usage: node bare_server.mjs WEB_CLIENT_DIR PORT. Prints "listening" when
// ready; exits on SIGTERM or when stdin closes.
import { createRequire } from "node:module";
import { createServer } from "node:http";
import path from "node:path";

const [webClient, port] = process.argv.slice(2);
const require = createRequire(path.join(webClient, "package.json"));
const { Server } = require("socket.io");

const http = createServer();
const io = new Server(http, { cors: { origin: "*" } });

io.on("connection", (socket) => {
  if (!socket.handshake.auth.controller) socket.join("all");
  socket.on("bench:go", (data, ack) => {
    const votes = data.votes;
    const poll = {
      id: "p1", question: "Which one?", options: ["a", "b"], tallies: [votes, 0],
      votes, state: "open", closes_at: null, created_at: 0,
    };
    io.to("all").emit("poll:updated", { poll, server_time: Date.now() / 1000 });
    ack({ ok: true });
  });
});

function quit() {
  io.close();
  process.exit(0);
}
process.on("SIGTERM", quit);
process.stdin.on("end", quit);
process.stdin.resume();
http.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
