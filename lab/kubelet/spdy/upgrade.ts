import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { SpdySession } from "./session.js";

/**
 * The HTTP/1.1 upgrade to SPDY/3.1 with subprotocol negotiation, as the kubelet does it
 * (k8s.io/apimachinery/pkg/util/httpstream: Handshake, and httpstream/spdy/upgrade.go):
 * the client lists X-Stream-Protocol-Version values in its order of preference, the server picks
 * the first it supports and names it in the 101 response; no common protocol is 403 with
 * X-Accepted-Stream-Protocol-Versions.
 */

export const SPDY_31 = "SPDY/3.1";

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  const connection = String(req.headers.connection ?? "").toLowerCase();
  const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
  return connection.includes("upgrade") && upgrade.includes(SPDY_31.toLowerCase());
}

/** All X-Stream-Protocol-Version values (repeated headers and comma-separated lists alike). */
export function requestedProtocols(req: IncomingMessage): string[] {
  const values = req.headersDistinct["x-stream-protocol-version"] ?? [];
  return values
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** The client's most preferred protocol that the server supports. */
export function negotiateProtocol(client: string[], server: string[]): string | undefined {
  return client.find((p) => server.includes(p));
}

/** Writes a plain HTTP error on the raw socket of a refused upgrade and closes it. */
export function refuseUpgrade(
  socket: Duplex,
  code: number,
  message: string,
  extraHeaders: Record<string, string[]> = {},
): void {
  const reason = code === 403 ? "Forbidden" : code === 404 ? "Not Found" : "Bad Request";
  const body = `${message}\n`;
  const headers = [
    `HTTP/1.1 ${code} ${reason}`,
    "Content-Type: text/plain; charset=utf-8",
    "X-Content-Type-Options: nosniff",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
    ...Object.entries(extraHeaders).flatMap(([name, values]) => values.map((v) => `${name}: ${v}`)),
  ];
  socket.end(`${headers.join("\r\n")}\r\n\r\n${body}`);
}

export type UpgradeResult = { session: SpdySession; protocol: string } | { error: string };

/**
 * Negotiates and switches protocols. On failure the socket has been answered and closed and the
 * result says why.
 */
export function upgradeToSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supported: string[],
): UpgradeResult {
  const offered = requestedProtocols(req);
  if (offered.length === 0) {
    const error = "unable to upgrade: X-Stream-Protocol-Version is required";
    refuseUpgrade(socket, 400, error);
    return { error };
  }
  const protocol = negotiateProtocol(offered, supported);
  if (!protocol) {
    const error = `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], server accepts [${supported.join(" ")}]`;
    refuseUpgrade(socket, 403, error, { "X-Accepted-Stream-Protocol-Versions": supported });
    return { error };
  }
  socket.write(
    [
      "HTTP/1.1 101 Switching Protocols",
      "Connection: Upgrade",
      `Upgrade: ${SPDY_31}`,
      `X-Stream-Protocol-Version: ${protocol}`,
      "",
      "",
    ].join("\r\n"),
  );
  return { session: new SpdySession(socket, head), protocol };
}
