/**
 * Configures a *kernel* WireGuard device, which has no UAPI socket (the kernel speaks generic
 * netlink): one `wg set` per reconcile batch and `wg show <if> dump` to read back. Used only when
 * the device manager found kernel WireGuard; wireguard-go devices go through UapiClient.
 */
import { run } from "../../../lib/exec.js";
import type { DeviceSettings, PeerChange, WireGuardConfigurator, WireGuardDeviceState } from "./uapi.js";

/** Parses `wg show <if> dump` (tab-separated; first line is the device). */
export function parseWgDump(text: string): WireGuardDeviceState {
  const [deviceLine, ...peerLines] = text.trim().split("\n");
  const device = deviceLine.split("\t");
  return {
    hasPrivateKey: device[0] !== "(none)" && device[0] !== "",
    listenPort: Number(device[2]),
    peers: peerLines
      .filter((line) => line.trim())
      .map((line) => {
        const [publicKey, , endpoint, allowed, handshake, rx, tx, keepalive] = line.split("\t");
        return {
          publicKey,
          ...(endpoint && endpoint !== "(none)" ? { endpoint } : {}),
          allowedIps: allowed && allowed !== "(none)" ? allowed.split(",") : [],
          persistentKeepaliveSeconds: keepalive === "off" ? 0 : Number(keepalive),
          lastHandshakeMs: Number(handshake) * 1000,
          rxBytes: Number(rx),
          txBytes: Number(tx),
        };
      }),
  };
}

/** argv for one `wg set` applying settings and changes (private key read from stdin). */
export function wgSetArgv(
  ifname: string,
  settings: DeviceSettings,
  changes: readonly PeerChange[],
): string[] {
  const argv = ["wg", "set", ifname];
  if (settings.listenPort !== undefined) argv.push("listen-port", String(settings.listenPort));
  if (settings.privateKeyHex !== undefined) argv.push("private-key", "/dev/stdin");
  for (const change of changes) {
    if (change.kind === "remove") {
      argv.push("peer", change.publicKey, "remove");
      continue;
    }
    const { peer } = change;
    argv.push("peer", change.peer.publicKey);
    if (peer.endpoint) argv.push("endpoint", peer.endpoint);
    argv.push("persistent-keepalive", String(peer.persistentKeepaliveSeconds ?? 0));
    argv.push("allowed-ips", peer.allowedIps.join(","));
  }
  return argv;
}

export class WgToolConfigurator implements WireGuardConfigurator {
  constructor(
    readonly ifname: string,
    private readonly netns?: string,
  ) {}

  async get(): Promise<WireGuardDeviceState> {
    return parseWgDump(await run(["wg", "show", this.ifname, "dump"], { netns: this.netns }));
  }

  async set(settings: DeviceSettings, changes: readonly PeerChange[]): Promise<void> {
    if (settings.replacePeers) {
      const current = await this.get();
      const kept = new Set(changes.map((c) => (c.kind === "upsert" ? c.peer.publicKey : "")));
      changes = [
        ...current.peers
          .filter((p) => !kept.has(p.publicKey))
          .map((p): PeerChange => ({ kind: "remove", publicKey: p.publicKey })),
        ...changes,
      ];
    }
    const input =
      settings.privateKeyHex !== undefined
        ? `${Buffer.from(settings.privateKeyHex, "hex").toString("base64")}\n`
        : undefined;
    await run(wgSetArgv(this.ifname, settings, changes), { netns: this.netns, input });
  }
}
