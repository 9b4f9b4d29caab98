#!/usr/bin/env node
import { createSocket } from "node:dgram";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { podIdentity } from "./identity.js";

/**
 * The lab image `clustermesh/echo`: answers with who it is, so tests and demos see which pod (and
 * cluster) served them.
 *   HTTP on $HTTP_PORT (8080): any GET → {"pod","namespace","node","cluster","podIP","path","client"}
 *   TCP on $ECHO_PORT (9000): every chunk received → one JSON line with the identity and "echo"
 *   UDP on $ECHO_PORT (9000): every datagram → one JSON datagram, same shape
 * Flags --http-port/--echo-port override the environment.
 */

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

const httpPort = Number(flag("--http-port") ?? process.env.HTTP_PORT ?? 8080);
const echoPort = Number(flag("--echo-port") ?? process.env.ECHO_PORT ?? 9000);
const identity = podIdentity();

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; answer with the plain address. */
function plain(address: string | undefined): string | undefined {
  return address?.startsWith("::ffff:") ? address.slice(7) : address;
}

const http = createHttpServer((req, res) => {
  const body = JSON.stringify({ ...identity, path: req.url, client: plain(req.socket.remoteAddress) });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) + 1 });
  res.end(`${body}\n`);
});
http.listen(httpPort, "::");

const tcp = createTcpServer((socket) => {
  socket.on("data", (chunk) => {
    socket.write(
      `${JSON.stringify({ ...identity, client: plain(socket.remoteAddress), echo: chunk.toString() })}\n`,
    );
  });
  socket.on("error", () => undefined);
});
tcp.listen(echoPort, "::");

const udp = createSocket({ type: "udp6", ipv6Only: false });
udp.on("message", (message, remote) => {
  udp.send(
    JSON.stringify({ ...identity, client: plain(remote.address), echo: message.toString() }),
    remote.port,
    remote.address,
  );
});
udp.bind(echoPort, "::");

console.log(
  `echo: ${identity.namespace}/${identity.pod} on ${identity.node} (${identity.cluster}) http :${httpPort}, tcp+udp :${echoPort}`,
);

const stop = (signal: string) => {
  console.log(`echo: ${signal}, stopping`);
  http.close();
  tcp.close();
  udp.close();
  process.exit(0);
};
process.once("SIGTERM", () => stop("SIGTERM"));
process.once("SIGINT", () => stop("SIGINT"));
