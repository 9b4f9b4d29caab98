/**
 * The backend of bench/services.ts, run inside a server pod's netns:
 *   node services-server.js <port> [<port> …]
 * Answers every chunk it receives with "pong\n" (one request = one chunk: the client waits for the
 * answer before it sends again) and closes its side when the client does.
 */
import { createServer } from "node:net";

const ports = process.argv.slice(2).map(Number);
if (ports.length === 0 || ports.some((port) => !Number.isInteger(port) || port <= 0)) {
  console.error("usage: services-server.js <port> [<port> …]");
  process.exit(64);
}
for (const port of ports) {
  createServer({ noDelay: true }, (socket) => {
    socket.on("data", () => socket.write("pong\n"));
    socket.on("end", () => socket.end());
    socket.on("error", () => socket.destroy());
  }).listen({ port, host: "0.0.0.0", backlog: 4096 });
}
