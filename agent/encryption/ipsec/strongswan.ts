/**
 * Userspace ESP for kernels without it: one strongSwan charon (kernel-libipsec: ESP in userspace
 * over a TUN `ipsec0`) per node netns, IKEv2 with a PSK per node pair derived from the Secret's
 * current key exactly as the kernel path derives its ESP keys, AES-GCM-16 ESP, one CHILD_SA per
 * pair for the pod CIDRs. Every path is per instance (STRONGSWAN_CONF, vici socket, log, PID
 * record): charon's defaults (/var/run/charon.*) are global and would collide between nodes.
 * Key rotation = new PSK + make-before-break reauthentication (new SAs before the old go).
 * libipsec SAs only come from IKE: no static keys, so the wire SPIs are IKE's, not the Secret's.
 * The agent routes exactly the remote pod CIDRs to ipsec0 (syncEncryptionRoutes, main table;
 * charon's per-selector routes rank after it). The traffic selectors also hold each node's
 * address, because a node's reply to a remote pod that called it (e.g. the API server) is routed
 * to ipsec0 with the node's address as source; were charon's routes first, the peer's address
 * itself — and with it IKE and ESP — would go into the tunnel.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SaCounts } from "../../../lib/api/agent-status.js";
import { hostCidr, parseIp } from "../../../lib/cidr.js";
import { run } from "../../../lib/exec.js";
import type { Logger } from "../../../lib/log.js";
import { silentLogger } from "../../../lib/log.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../../lib/process.js";
import { encryptionRoutes, syncEncryptionRoutes } from "../routes.js";
import type { IpsecBackend, IpsecReport } from "./backend.js";
import { deriveNodePairKey, type IpsecKey, type IpsecKeySet } from "./keys.js";
import type { XfrmNode, XfrmRemote } from "./xfrm.js";

export const LIBIPSEC_MTU = 1400;
export const LIBIPSEC_DEVICE = "ipsec0"; // kernel-libipsec's TUN, one per node netns
const PLUGINS =
  "random nonce openssl aes gcm sha1 sha2 hmac gmp kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici";

export interface StrongSwanPaths {
  dir: string;
  conf: string;
  swanctlConf: string;
  vici: string;
  log: string;
  pidRecord: string;
}

export function strongSwanPaths(dir: string): StrongSwanPaths {
  return {
    dir,
    conf: join(dir, "strongswan.conf"),
    swanctlConf: join(dir, "swanctl.conf"),
    vici: join(dir, "charon.vici"),
    log: join(dir, "charon.log"),
    pidRecord: join(dir, "charon.pid.json"),
  };
}

/** The daemon's config: only the plugins needed, per-instance vici socket and log, make-before-break. */
export function strongSwanConf(paths: StrongSwanPaths): string {
  return `charon-systemd {
  load_modular = no
  load = ${PLUGINS}
  make_before_break = yes
  install_virtual_ip = no
  # charon's own routes (one per CHILD_SA selector, table 220) are consulted after the main
  # table, where the agent routes exactly the remote pod CIDRs to ipsec0: the selectors also hold
  # the peer's address (see swanctlConf), which must stay on the underlay (IKE, ESP).
  routing_table_prio = 32767
  # A peer whose charon restarted (agent restart) is declared dead within seconds, not minutes
  # (defaults: 5 tries from 4 s, ~165 s), so dpd_action = restart brings the pair back quickly.
  retransmit_tries = 3
  retransmit_timeout = 1.0
  retransmit_base = 1.4
  filelog {
    log {
      path = ${paths.log}
      default = 1
      ike = 1
      flush_line = yes
    }
  }
  journal {
    default = -1
  }
  plugins {
    vici {
      socket = unix://${paths.vici}
    }
    kernel-libipsec {
      raw_esp = yes
      # the selectors hold the peer's address (see swanctlConf; routing_table_prio above)
      allow_peer_ts = yes
    }
  }
}
`;
}

export function connectionName(node: string): string {
  return `n-${node.replace(/[^A-Za-z0-9]/g, "-")}`;
}

function compareIps(a: string, b: string): number {
  const x = parseIp(a).value;
  const y = parseIp(b).value;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The node of a pair that initiates IKE: the lower IP, so exactly one side does. */
export function isInitiator(local: XfrmNode, remote: XfrmNode): boolean {
  return compareIps(local.ip, remote.ip) < 0;
}

/**
 * PSK for a pair: Cilium's per-pair derivation in the canonical (lower IP, higher IP) order, as
 * IKE needs one secret both ends agree on. Uses the key material of the Secret's current key.
 */
export function pairPsk(key: IpsecKey, local: XfrmNode, remote: XfrmNode): string {
  const material = key.algorithm.kind === "aead" ? key.algorithm.key : key.algorithm.encKey;
  const [first, second] = isInitiator(local, remote) ? [local, remote] : [remote, local];
  if (!key.perNodePair) return `0x${material.toString("hex")}`;
  return `0x${deriveNodePairKey(material, { ip: first.ip, bootId: first.bootId }, { ip: second.ip, bootId: second.bootId }).toString("hex")}`;
}

export function espProposal(key: IpsecKey): string {
  return key.algorithm.kind === "aead" ? `aes${key.aesKeyBits}gcm16` : `aes${key.aesKeyBits}-sha256`;
}

/** swanctl.conf: one connection + one PSK per remote node (pod CIDRs and node address as selectors). Contains secrets: written 0600. */
export function swanctlConf(local: XfrmNode, remotes: readonly XfrmRemote[], keys: IpsecKeySet): string {
  const connections: string[] = [];
  const secrets: string[] = [];
  for (const remote of remotes) {
    const name = connectionName(remote.node);
    const pairKeys = remote.keys ?? keys;
    connections.push(`  ${name} {
    version = 2
    local_addrs = ${local.ip}
    remote_addrs = ${remote.ip}
    proposals = aes128gcm16-prfsha256-ecp256
    dpd_delay = 5s
    local {
      auth = psk
      id = ${local.ip}
    }
    remote {
      auth = psk
      id = ${remote.ip}
    }
    children {
      pods {
        local_ts = ${[...local.podCidrs, hostCidr(local.ip)].join(",")}
        remote_ts = ${[...remote.podCidrs, hostCidr(remote.ip)].join(",")}
        esp_proposals = ${espProposal(pairKeys.current)}
        mode = tunnel
        start_action = none
        dpd_action = restart
        close_action = none
      }
    }
  }`);
    secrets.push(`  ike-${name} {
    id-local = ${local.ip}
    id-remote = ${remote.ip}
    secret = ${pairPsk(pairKeys.current, local, remote)}
  }`);
  }
  return `connections {\n${connections.join("\n")}\n}\nsecrets {\n${secrets.join("\n")}\n}\n`;
}

/** Parses `swanctl --list-sas` text output (IKE SA lines start at column 0, CHILD SAs are indented). */
export function parseListSas(text: string): SaCounts {
  const counts: SaCounts = { ike: 0, child: 0, byConnection: {} };
  let current: { ike: number; child: number; spis: string[] } | undefined;
  for (const line of text.split("\n")) {
    const ike = /^(\S+): #\d+, (\w+)/.exec(line);
    if (ike) {
      current = counts.byConnection[ike[1]] ??= { ike: 0, child: 0, spis: [] };
      if (ike[2] === "ESTABLISHED") {
        current.ike++;
        counts.ike++;
      }
      continue;
    }
    if (/^\s+\S+: #\d+, reqid \d+, INSTALLED/.test(line) && current) {
      current.child++;
      counts.child++;
      continue;
    }
    const spi = /^\s+(in|out)\s+([0-9a-f]{8})/.exec(line);
    if (spi && current) current.spis.push(`${spi[1]}:${spi[2]}`);
  }
  return counts;
}

export interface StrongSwanOptions {
  /** Per-instance directory (config, vici socket, log, PID record): the agent's state dir. */
  dir: string;
  netns?: string;
  local: XfrmNode;
  charon?: string;
  log?: Logger;
}

export class StrongSwanIpsec implements IpsecBackend {
  readonly name = "strongswan-libipsec";
  private loaded = new Map<string, { psk: string; keySpi: number }>();
  private readonly log: Logger;

  private constructor(
    private readonly options: StrongSwanOptions,
    readonly paths: StrongSwanPaths,
    private process: ProcessRef | undefined,
  ) {
    this.log = options.log ?? silentLogger();
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  static async start(options: StrongSwanOptions): Promise<StrongSwanIpsec> {
    const paths = strongSwanPaths(options.dir);
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    writeFileSync(paths.conf, strongSwanConf(paths), { mode: 0o600 });
    rmSync(paths.vici, { force: true });
    const ref = startDaemon({
      argv: [options.charon ?? "/usr/sbin/charon-systemd"],
      netns: options.netns,
      logFile: join(paths.dir, "charon.stdout.log"),
      env: { ...process.env, STRONGSWAN_CONF: paths.conf },
    });
    writeFileSync(paths.pidRecord, JSON.stringify(ref), { mode: 0o600 });
    const instance = new StrongSwanIpsec(options, paths, ref);
    try {
      await waitFor(
        "charon vici socket",
        () => {
          if (!isRunning(ref)) throw new WaitAborted(`charon exited; see ${paths.log}`);
          return existsSync(paths.vici);
        },
        { timeoutMs: 15_000 },
      );
    } catch (error) {
      await instance.stop();
      throw error;
    }
    (options.log ?? silentLogger()).info(
      { pid: ref.pid, dir: paths.dir },
      "ipsec: started charon (kernel-libipsec)",
    );
    return instance;
  }

  private swanctl(args: string[]): Promise<string> {
    return run(["swanctl", ...args, "--uri", `unix://${this.paths.vici}`], {
      env: { ...process.env, STRONGSWAN_CONF: this.paths.conf },
      timeoutMs: 20_000,
    });
  }

  /**
   * Loads connections and PSKs for `remotes`, terminates SAs of removed ones, and (as initiator)
   * initiates new pairs and reauthenticates pairs whose PSK changed. A pair whose PSK changed on
   * the responder side is reauthenticated by the initiator once it syncs the same key.
   */
  async sync(
    remotes: readonly XfrmRemote[],
    keys: IpsecKeySet,
    options: { dropPrefixes?: readonly string[] } = {},
  ): Promise<{ initiated: string[]; reauthenticated: string[]; failed: string[]; retry: boolean }> {
    const local = this.options.local;
    const wanted = remotes.filter((r) => r.node !== local.node);
    writeFileSync(this.paths.swanctlConf, swanctlConf(local, wanted, keys), { mode: 0o600 });
    await this.swanctl(["--load-all", "--clear", "--noprompt", "--file", this.paths.swanctlConf]);
    const next = new Map(
      wanted.map((r) => [
        connectionName(r.node),
        { psk: pairPsk((r.keys ?? keys).current, local, r), keySpi: (r.keys ?? keys).current.spi },
      ]),
    );
    for (const name of this.loaded.keys()) {
      if (!next.has(name))
        await this.swanctl(["--terminate", "--ike", name, "--force", "--timeout", "5"]).catch((error) =>
          this.log.warn({ connection: name, err: error }, "ipsec: terminating a removed connection failed"),
        );
    }
    // Also before any SA exists: remote pod traffic goes to ipsec0, where libipsec drops what has
    // no SA yet, instead of a plain route (charon's own routes rank after the main table).
    // Prefixes of nodes that cannot be peers are blackholed (dropPrefixes), never sent plain.
    await syncEncryptionRoutes(
      encryptionRoutes(
        LIBIPSEC_DEVICE,
        wanted.flatMap((r) => r.podCidrs),
        options.dropPrefixes ?? [],
      ),
      { netns: this.options.netns },
    );
    const initiated: string[] = [];
    const reauthenticated: string[] = [];
    const failed: string[] = [];
    const established = parseListSas(await this.swanctl(["--list-sas"])).byConnection;
    for (const remote of wanted) {
      if (!isInitiator(local, remote)) continue;
      const name = connectionName(remote.node);
      const previous = this.loaded.get(name);
      if (!established[name]?.child) {
        // One unreachable or not-yet-configured peer must not hold up the others: it is retried
        // on the next sync (no CHILD_SA yet), and its traffic is dropped by ipsec0 meanwhile.
        try {
          await this.swanctl(["--initiate", "--child", "pods", "--ike", name, "--timeout", "5"]);
          initiated.push(name);
        } catch (error) {
          failed.push(name);
          this.log.warn({ connection: name, err: error }, "ipsec: initiate failed");
        }
      } else if (previous && previous.psk !== next.get(name)?.psk) {
        await this.swanctl(["--rekey", "--ike", name, "--reauth"]);
        reauthenticated.push(name);
      }
    }
    this.loaded = next;
    if (initiated.length || reauthenticated.length) {
      this.log.info(
        { initiated, reauthenticated, keySpi: keys.current.spi },
        "ipsec: SAs initiated/reauthenticated",
      );
    }
    return { initiated, reauthenticated, failed, retry: failed.length > 0 };
  }

  holdsBackKeyFor(remote: XfrmNode): boolean {
    return isInitiator(this.options.local, remote);
  }

  async saCounts(): Promise<SaCounts> {
    return parseListSas(await this.swanctl(["--list-sas"]));
  }

  async report(peers: readonly XfrmRemote[]): Promise<IpsecReport> {
    const counts = await this.saCounts();
    const report: IpsecReport = { peers: {}, saCounts: counts, incomplete: false };
    for (const peer of peers) {
      const connection = counts.byConnection[connectionName(peer.node)];
      report.peers[peer.node] = { sas: { ike: connection?.ike ?? 0, child: connection?.child ?? 0 } };
      // a pair we initiate without an established CHILD_SA is retried on the next round
      if (isInitiator(this.options.local, peer) && !connection?.child) report.incomplete = true;
    }
    return report;
  }

  /**
   * Stops charon by its PID and removes the instance's socket, config and record. `dropPrefixes`
   * are left blackholed (the agent's restart: remote pod traffic is dropped until the next agent
   * has SAs again, instead of leaving without encryption); without them every route goes.
   */
  async stop(options: { dropPrefixes?: readonly string[] } = {}): Promise<void> {
    await syncEncryptionRoutes(encryptionRoutes(LIBIPSEC_DEVICE, [], options.dropPrefixes ?? []), {
      netns: this.options.netns,
    }).catch((error) => this.log.warn({ err: error }, "ipsec: removing the encryption routes failed"));
    if (this.process) {
      await stopProcess(this.process);
      this.process = undefined;
    }
    for (const path of [this.paths.vici, this.paths.pidRecord, this.paths.swanctlConf])
      rmSync(path, { force: true });
  }

  /** Recent charon log lines (for test failures). */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.paths.log, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}
