/**
 * Kernel IPsec (XFRM) model: node pairs + keys → the `ip xfrm` states and policies, pure, plus
 * the ordered commands to move from one model to the next. Design (no BPF marks: the policies
 * select on pod CIDRs, so it works with plain routing and with our VXLAN datapath alike):
 * - per remote node: OUT state (local→remote, current key) and IN states (remote→local, every
 *   accepted key), tunnel-mode ESP between node IPs, ESN, replay window 1024, reqid 1;
 * - wire SPI = keySpi<<28 | 28 bits of SHA-256(src‖dst IP): both ends compute it alone, states
 *   stay unique per (dst, spi) without Cilium's per-node marks, and the key id is visible;
 * - OUT policy per (local pod CIDR, remote pod CIDR) with a template to the remote node; FWD and
 *   IN policies require ESP for the reverse direction (plaintext from a remote pod is refused);
 * - a catch-all OUT BLOCK policy (lower precedence) from local pod CIDRs to the mesh's encrypted
 *   prefixes: whatever has no tunnel policy (node being added/removed, rejected node) is dropped.
 * Rotation: IN states for old and new keys coexist; a node moves its OUT state for a pair to the
 * new key only once the peer advertises that SPI (so the peer's IN state exists: `remote.keys`
 * holds the old key until then), and the new OUT state is added before the old one is deleted
 * (the kernel picks the newest OUT state), so no packet is sent without a state or lost.
 */
import { createHash } from "node:crypto";
import { formatCidr, parseCidr, parseIp } from "../../../lib/cidr.js";
import type { IpsecKey, IpsecKeySet } from "./keys.js";

export const XFRM_REQID = 1;
export const XFRM_REPLAY_WINDOW = 1024;
export const POLICY_PRIORITY_TUNNEL = 100;
export const POLICY_PRIORITY_BLOCK = 4000; // larger = lower precedence: only when no tunnel policy matches

export interface XfrmNode {
  /** "cluster/name" */
  node: string;
  ip: string;
  podCidrs: readonly string[];
  bootId: string;
}

/**
 * A remote node, optionally with the keys for its pair instead of the shared ones: during a
 * rotation a node keeps its outbound key for a pair until the peer advertises the new SPI.
 */
export type XfrmRemote = XfrmNode & { keys?: IpsecKeySet };

export interface XfrmModelInput {
  local: XfrmNode;
  remotes: readonly XfrmRemote[];
  keys: IpsecKeySet;
  /** Destinations local pods may only reach encrypted (e.g. every cluster's pod pool). */
  encryptedPrefixes: readonly string[];
}

export interface XfrmState {
  direction: "in" | "out";
  node: string;
  src: string;
  dst: string;
  spi: number;
  keySpi: number;
  /** Algorithm arguments for `ip xfrm state add` (contain key material: never log or persist). */
  algorithmArgs: string[];
  /** Truncated SHA-256 of algorithmArgs: tells a key change apart without keeping the key. */
  keyDigest: string;
}

export interface XfrmPolicy {
  dir: "out" | "in" | "fwd";
  src: string;
  dst: string;
  priority: number;
  action: "allow" | "block";
  tmpl?: { src: string; dst: string };
}

export interface XfrmModel {
  states: XfrmState[];
  policies: XfrmPolicy[];
  /** Remote nodes left out (with why); their pod CIDRs fall under the block policy. */
  skipped: { node: string; reason: string }[];
}

export function wireSpi(keySpi: number, srcIp: string, dstIp: string): number {
  const hash = createHash("sha256").update(`${srcIp}>${dstIp}`).digest();
  return ((keySpi & 0xf) << 28) | (hash.readUInt32BE(0) & 0x0fffffff);
}

function keyDigest(args: readonly string[]): string {
  return createHash("sha256").update(args.join(" ")).digest("hex").slice(0, 16);
}

function algorithmArgs(key: IpsecKey): { algorithmArgs: string[]; keyDigest: string } {
  const args = algorithmArgsOf(key);
  return { algorithmArgs: args, keyDigest: keyDigest(args) };
}

function algorithmArgsOf(key: IpsecKey): string[] {
  const a = key.algorithm;
  if (a.kind === "aead") return ["aead", a.algorithm, `0x${a.key.toString("hex")}`, String(a.icvBits)];
  return [
    "auth",
    a.authAlgorithm,
    `0x${a.authKey.toString("hex")}`,
    "enc",
    a.encAlgorithm,
    `0x${a.encKey.toString("hex")}`,
  ];
}

export function buildXfrmModel(input: XfrmModelInput): XfrmModel {
  const { local, keys } = input;
  const states: XfrmState[] = [];
  const policies: XfrmPolicy[] = [];
  const skipped: XfrmModel["skipped"] = [];
  const localCidrs = input.local.podCidrs.map((c) => formatCidr(parseCidr(c)));
  const usedInSpis = new Map<number, string>();
  for (const remote of [...input.remotes].sort((x, y) => (x.node < y.node ? -1 : 1))) {
    if (remote.node === local.node) continue;
    let remoteCidrs: string[];
    let pairStates: XfrmState[];
    try {
      parseIp(remote.ip);
      remoteCidrs = remote.podCidrs.map((c) => formatCidr(parseCidr(c)));
      const localKeyInput = { ip: local.ip, bootId: local.bootId };
      const remoteKeyInput = { ip: remote.ip, bootId: remote.bootId };
      const outKey = (remote.keys ?? keys).current;
      pairStates = [
        {
          direction: "out",
          node: remote.node,
          src: local.ip,
          dst: remote.ip,
          spi: wireSpi(outKey.spi, local.ip, remote.ip),
          keySpi: outKey.spi,
          ...algorithmArgs(outKey.forPair(localKeyInput, remoteKeyInput)),
        },
        ...keys.all.map(
          (key): XfrmState => ({
            direction: "in",
            node: remote.node,
            src: remote.ip,
            dst: local.ip,
            spi: wireSpi(key.spi, remote.ip, local.ip),
            keySpi: key.spi,
            ...algorithmArgs(key.forPair(remoteKeyInput, localKeyInput)),
          }),
        ),
      ];
    } catch (error) {
      skipped.push({ node: remote.node, reason: (error as Error).message });
      continue;
    }
    const clash = pairStates.find((s) => s.direction === "in" && usedInSpis.has(s.spi));
    if (clash) {
      skipped.push({
        node: remote.node,
        reason: `inbound SPI 0x${clash.spi.toString(16)} clashes with ${usedInSpis.get(clash.spi)}`,
      });
      continue;
    }
    for (const state of pairStates) if (state.direction === "in") usedInSpis.set(state.spi, remote.node);
    states.push(...pairStates);
    for (const localCidr of localCidrs) {
      for (const remoteCidr of remoteCidrs) {
        policies.push({
          dir: "out",
          src: localCidr,
          dst: remoteCidr,
          priority: POLICY_PRIORITY_TUNNEL,
          action: "allow",
          tmpl: { src: local.ip, dst: remote.ip },
        });
        for (const dir of ["fwd", "in"] as const) {
          policies.push({
            dir,
            src: remoteCidr,
            dst: localCidr,
            priority: POLICY_PRIORITY_TUNNEL,
            action: "allow",
            tmpl: { src: remote.ip, dst: local.ip },
          });
        }
      }
    }
  }
  const tunnelSelectors = new Set(policies.filter((p) => p.dir === "out").map((p) => `${p.src}>${p.dst}`));
  for (const localCidr of localCidrs) {
    for (const prefix of input.encryptedPrefixes.map((c) => formatCidr(parseCidr(c)))) {
      // The kernel keys policies by selector: a block with a tunnel policy's exact selector would clash.
      if (tunnelSelectors.has(`${localCidr}>${prefix}`)) continue;
      policies.push({
        dir: "out",
        src: localCidr,
        dst: prefix,
        priority: POLICY_PRIORITY_BLOCK,
        action: "block",
      });
    }
  }
  return { states, policies, skipped };
}

function stateId(state: XfrmState): string {
  return `${state.src}>${state.dst} spi 0x${state.spi.toString(16)}`;
}

function policyId(policy: XfrmPolicy): string {
  return `${policy.dir} ${policy.src}>${policy.dst}`;
}

function policyEqual(a: XfrmPolicy, b: XfrmPolicy): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function stateAddArgv(state: XfrmState): string[] {
  return [
    "ip",
    "xfrm",
    "state",
    "add",
    "src",
    state.src,
    "dst",
    state.dst,
    "proto",
    "esp",
    "spi",
    `0x${state.spi.toString(16).padStart(8, "0")}`,
    "reqid",
    String(XFRM_REQID),
    "mode",
    "tunnel",
    "replay-window",
    String(XFRM_REPLAY_WINDOW),
    "flag",
    "esn",
    ...state.algorithmArgs,
  ];
}

export function stateDeleteArgv(state: XfrmState): string[] {
  return [
    "ip",
    "xfrm",
    "state",
    "delete",
    "src",
    state.src,
    "dst",
    state.dst,
    "proto",
    "esp",
    "spi",
    `0x${state.spi.toString(16).padStart(8, "0")}`,
  ];
}

export function policyArgv(verb: "update" | "delete", policy: XfrmPolicy): string[] {
  const argv = ["ip", "xfrm", "policy", verb, "src", policy.src, "dst", policy.dst, "dir", policy.dir];
  if (verb === "delete") return argv;
  argv.push("priority", String(policy.priority), "action", policy.action);
  if (policy.tmpl) {
    argv.push(
      "tmpl",
      "src",
      policy.tmpl.src,
      "dst",
      policy.tmpl.dst,
      "proto",
      "esp",
      "reqid",
      String(XFRM_REQID),
      "mode",
      "tunnel",
    );
  }
  return argv;
}

export interface XfrmCommand {
  kind: "state" | "policy";
  argv: string[];
  /** A state add: what removes a same-id state left by a failed sync or an earlier agent. */
  replaces?: string[];
}

/** The model without key material, as the backend keeps it on disk to diff against after a restart. */
export function withoutKeyMaterial(model: XfrmModel): XfrmModel {
  return { ...model, states: model.states.map((state) => ({ ...state, algorithmArgs: [] })) };
}

/**
 * Ordered commands from `previous` to `next`: block policies first (so nothing leaks while the
 * rest changes), then new states, then tunnel policies, then stale policies, stale states last.
 */
export function planXfrmChanges(previous: XfrmModel | undefined, next: XfrmModel): XfrmCommand[] {
  const prevStates = new Map((previous?.states ?? []).map((s) => [stateId(s), s]));
  const nextStates = new Map(next.states.map((s) => [stateId(s), s]));
  const prevPolicies = new Map((previous?.policies ?? []).map((p) => [policyId(p), p]));
  const nextPolicies = new Map(next.policies.map((p) => [policyId(p), p]));
  const commands: XfrmCommand[] = [];
  const changedPolicies = [...nextPolicies.values()].filter((p) => {
    const old = prevPolicies.get(policyId(p));
    return !old || !policyEqual(old, p);
  });
  for (const policy of changedPolicies.filter((p) => p.action === "block")) {
    commands.push({ kind: "policy", argv: policyArgv("update", policy) });
  }
  for (const [id, state] of nextStates) {
    const old = prevStates.get(id);
    if (old && old.keyDigest !== state.keyDigest) {
      commands.push({ kind: "state", argv: stateDeleteArgv(old) }); // same SPI, new key (a node rebooted)
    }
    if (!old || old.keyDigest !== state.keyDigest) {
      commands.push({ kind: "state", argv: stateAddArgv(state), replaces: stateDeleteArgv(state) });
    }
  }
  for (const policy of changedPolicies.filter((p) => p.action !== "block")) {
    commands.push({ kind: "policy", argv: policyArgv("update", policy) });
  }
  for (const [id, policy] of prevPolicies) {
    if (!nextPolicies.has(id)) commands.push({ kind: "policy", argv: policyArgv("delete", policy) });
  }
  for (const [id, state] of prevStates) {
    if (!nextStates.has(id)) commands.push({ kind: "state", argv: stateDeleteArgv(state) });
  }
  return commands;
}
