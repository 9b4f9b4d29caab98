/**
 * A tiny server for the namespace tests, run inside a pod's netns:
 *   node echo-server.js tcp|udp <port>
 * Answers every connection or datagram with "<proto>-from-<client address>", so tests can see
 * which client address the backend observed (no SNAT) and that the reply made it back.
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const [proto, portText] = process.argv.slice(2);
const port = Number(portText);

if (proto === "tcp") {
  createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.end(`tcp-from-${socket.remoteAddress}\n`);
  }).listen(port, "0.0.0.0");
} else if (proto === "udp") {
  const socket = createSocket("udp4");
  socket.on("message", (_message, remote) => {
    socket.send(`udp-from-${remote.address}\n`, remote.port, remote.address);
  });
  socket.bind(port, "0.0.0.0");
} else {
  console.error("usage: echo-server.js tcp|udp <port>");
  process.exit(64);
}
