/**
 * WireGuard's cross-platform userspace API (the text protocol of wireguard-go's
 * `/var/run/wireguard/<ifname>.sock`): `set=1` / `get=1` requests, `key=value` lines, an empty line
 * ending each request and answer, `errno=N` as the status. Serialising and parsing are pure; the
 * client is one short unix-socket exchange per request, so no `wg` process is spawned per change.
 */
import { connect } from "node:net";
import { wireGuardKeyFromHex, wireGuardKeyToHex } from "./keys.js";

export const UAPI_SOCKET_DIR = "/var/run/wireguard";

export function uapiSocketPath(ifname: string): string {
  return `${UAPI_SOCKET_DIR}/${ifname}.sock`;
}

/** A peer as configured or read back; keys are base64 here, converted to hex on the wire. */
export interface WireGuardPeerConfig {
  publicKey: string;
  /** "ip:port" or "[ipv6]:port". */
  endpoint?: string;
  allowedIps: string[];
  persistentKeepaliveSeconds?: number;
}

export type PeerChange =
  | { kind: "upsert"; peer: WireGuardPeerConfig }
  | { kind: "remove"; publicKey: string };

export interface DeviceSettings {
  /** Hex private key (from WireGuardKeyPair.privateKeyHex). */
  privateKeyHex?: string;
  listenPort?: number;
  /** Remove every peer not listed in this same request. */
  replacePeers?: boolean;
}

export interface WireGuardPeerState extends WireGuardPeerConfig {
  /** Unix time in ms of the last handshake, 0 when there was none. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface WireGuardDeviceState {
  /** Whether a private key is set (the key itself is never kept). */
  hasPrivateKey: boolean;
  listenPort: number;
  peers: WireGuardPeerState[];
}

export class UapiError extends Error {
  constructor(
    readonly ifname: string,
    readonly errno: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`WireGuard UAPI on ${ifname}: ${message}`, options);
    this.name = "UapiError";
  }
}

/** The `set=1` request text. Each upsert replaces that peer's allowed IPs (never appends stale ones). */
export function formatSetRequest(settings: DeviceSettings, changes: readonly PeerChange[]): string {
  const lines = ["set=1"];
  if (settings.privateKeyHex !== undefined) lines.push(`private_key=${settings.privateKeyHex}`);
  if (settings.listenPort !== undefined) lines.push(`listen_port=${settings.listenPort}`);
  if (settings.replacePeers) lines.push("replace_peers=true");
  for (const change of changes) {
    if (change.kind === "remove") {
      lines.push(`public_key=${wireGuardKeyToHex(change.publicKey)}`, "remove=true");
      continue;
    }
    const peer = change.peer;
    lines.push(`public_key=${wireGuardKeyToHex(peer.publicKey)}`);
    if (peer.endpoint) lines.push(`endpoint=${peer.endpoint}`);
    lines.push(`persistent_keepalive_interval=${peer.persistentKeepaliveSeconds ?? 0}`);
    lines.push("replace_allowed_ips=true");
    for (const ip of peer.allowedIps) lines.push(`allowed_ip=${ip}`);
  }
  return `${lines.join("\n")}\n\n`;
}

/** Parses a `get=1` answer. Throws UapiError when errno is not 0. */
export function parseGetResponse(ifname: string, text: string): WireGuardDeviceState {
  const state: WireGuardDeviceState = { hasPrivateKey: false, listenPort: 0, peers: [] };
  let peer: WireGuardPeerState | undefined;
  let handshakeSec = 0;
  let handshakeNsec = 0;
  const finishPeer = () => {
    if (peer) peer.lastHandshakeMs = handshakeSec * 1000 + Math.floor(handshakeNsec / 1e6);
    handshakeSec = 0;
    handshakeNsec = 0;
  };
  let errno: number | undefined;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const at = line.indexOf("=");
    const key = line.slice(0, at);
    const value = line.slice(at + 1);
    switch (key) {
      case "private_key":
        state.hasPrivateKey = /[1-9a-f]/i.test(value);
        break;
      case "listen_port":
        state.listenPort = Number(value);
        break;
      case "public_key":
        finishPeer();
        peer = {
          publicKey: wireGuardKeyFromHex(value),
          allowedIps: [],
          lastHandshakeMs: 0,
          rxBytes: 0,
          txBytes: 0,
        };
        state.peers.push(peer);
        break;
      case "endpoint":
        if (peer) peer.endpoint = value;
        break;
      case "allowed_ip":
        peer?.allowedIps.push(value);
        break;
      case "persistent_keepalive_interval":
        if (peer) peer.persistentKeepaliveSeconds = Number(value);
        break;
      case "last_handshake_time_sec":
        handshakeSec = Number(value);
        break;
      case "last_handshake_time_nsec":
        handshakeNsec = Number(value);
        break;
      case "rx_bytes":
        if (peer) peer.rxBytes = Number(value);
        break;
      case "tx_bytes":
        if (peer) peer.txBytes = Number(value);
        break;
      case "errno":
        errno = Number(value);
        break;
      default:
        break; // fwmark, protocol_version, preshared_key (never kept), …
    }
  }
  finishPeer();
  if (errno === undefined) throw new UapiError(ifname, -1, "answer without errno");
  if (errno !== 0) throw new UapiError(ifname, errno, `get failed with errno ${errno}`);
  return state;
}

function parseErrno(ifname: string, text: string): void {
  const match = /^errno=(-?\d+)$/m.exec(text);
  if (!match) throw new UapiError(ifname, -1, `answer without errno: ${JSON.stringify(text.slice(0, 80))}`);
  const errno = Number(match[1]);
  if (errno !== 0) throw new UapiError(ifname, errno, `set failed with errno ${errno}`);
}

export interface WireGuardConfigurator {
  readonly ifname: string;
  get(): Promise<WireGuardDeviceState>;
  set(settings: DeviceSettings, changes: readonly PeerChange[]): Promise<void>;
}

/** One request per connection, as wireguard-go expects; the answer ends with an empty line. */
export class UapiClient implements WireGuardConfigurator {
  constructor(
    readonly ifname: string,
    readonly socketPath = uapiSocketPath(ifname),
    private readonly timeoutMs = 5_000,
  ) {}

  async get(): Promise<WireGuardDeviceState> {
    return parseGetResponse(this.ifname, await this.exchange("get=1\n\n"));
  }

  async set(settings: DeviceSettings, changes: readonly PeerChange[]): Promise<void> {
    parseErrno(this.ifname, await this.exchange(formatSetRequest(settings, changes)));
  }

  private exchange(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      let answer = "";
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new UapiError(this.ifname, -1, `no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        answer += chunk;
        if (answer.endsWith("\n\n")) {
          clearTimeout(timer);
          socket.end();
          resolve(answer);
        }
      });
      socket.on("error", (error) => {
        clearTimeout(timer);
        reject(new UapiError(this.ifname, -1, error.message, { cause: error }));
      });
      socket.on("close", () => {
        clearTimeout(timer);
        if (!answer.endsWith("\n\n")) reject(new UapiError(this.ifname, -1, "connection closed mid-answer"));
      });
      socket.write(request);
    });
  }
}
