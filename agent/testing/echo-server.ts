#!/usr/bin/env node
// Test backend: answers its name on TCP 8080 (then closes) and UDP 5353, echoes lines on TCP 8081.
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

const name = process.argv[2] ?? "backend";
createServer((socket) => socket.end(`${name}\n`)).listen(8080);
createServer((socket) => socket.pipe(socket)).listen(8081);
const udp = createSocket("udp4");
udp.on("message", (_message, peer) => udp.send(`${name}\n`, peer.port, peer.address));
udp.bind(5353);
process.on("SIGTERM", () => process.exit(0));
