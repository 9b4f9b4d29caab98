/**
 * A tiny server for the namespace tests, run inside a pod's netns:
 *   node echo-server.js tcp|udp <port> [host]     (host 0.0.0.0 by default; "::" serves IPv6 only)
 * Answers every connection or datagram with "<proto>-from-<client address>", so tests can see
 * which client address the backend observed (no SNAT) and that the reply made it back.
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const [proto, portText, host = "0.0.0.0"] = process.argv.slice(2);
const port = Number(portText);
const isV6 = host.includes(":");

if (proto === "tcp") {
  createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.end(`tcp-from-${socket.remoteAddress}\n`);
  }).listen({ port, host, ipv6Only: isV6 });
} else if (proto === "udp") {
  const socket = createSocket({ type: isV6 ? "udp6" : "udp4", ipv6Only: isV6 });
  socket.on("message", (_message, remote) => {
    socket.send(`udp-from-${remote.address}\n`, remote.port, remote.address);
  });
  socket.bind(port, host);
} else {
  console.error("usage: echo-server.js tcp|udp <port>");
  process.exit(64);
}
