import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyProbeError, parseXfrmStates } from "./kernel.js";
import { parseIpsecKeys } from "./keys.js";
import {
  buildXfrmModel,
  planXfrmChanges,
  policyArgv,
  stateAddArgv,
  stateDeleteArgv,
  wireSpi,
  withoutKeyMaterial,
  type XfrmNode,
} from "./xfrm.js";
import { countPeerStates } from "./xfrm-backend.js";

const KEY3 = `3+ rfc4106(gcm(aes)) ${"0102030405060708090a0b0c0d0e0f1011121314"} 128`;
const KEY4 = `4+ rfc4106(gcm(aes)) ${"a1".repeat(20)} 128`;
const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;
const A: XfrmNode = { node: "c1/a", ip: "172.31.250.1", podCidrs: ["10.250.1.0/24"], bootId: boot("a") };
const B: XfrmNode = { node: "c1/b", ip: "172.31.250.2", podCidrs: ["10.250.2.0/24"], bootId: boot("b") };
const R: XfrmNode = { node: "c2/r", ip: "172.31.251.1", podCidrs: ["10.251.1.0/24"], bootId: boot("c") };
const MESH = ["10.250.0.0/16", "10.251.0.0/16"];

const model = (local: XfrmNode, remotes: XfrmNode[], keys: string) =>
  buildXfrmModel({ local, remotes, keys: parseIpsecKeys(keys), encryptedPrefixes: MESH });

describe("XFRM model (pure)", () => {
  it("one OUT state (current key) and IN states (every key) per remote node, SPI carries the key id", () => {
    const m = model(A, [A, B, R], `${KEY3}\n${KEY4}`);
    const out = m.states.filter((s) => s.direction === "out");
    const inbound = m.states.filter((s) => s.direction === "in");
    assert.deepEqual(
      out.map((s) => [s.node, s.keySpi, s.src, s.dst]),
      [
        ["c1/b", 4, A.ip, B.ip],
        ["c2/r", 4, A.ip, R.ip],
      ],
    );
    assert.deepEqual(
      inbound.map((s) => [s.node, s.keySpi]),
      [
        ["c1/b", 3],
        ["c1/b", 4],
        ["c2/r", 3],
        ["c2/r", 4],
      ],
    );
    for (const state of m.states) assert.equal(state.spi >>> 28, state.keySpi);
    assert.equal(new Set(m.states.map((s) => `${s.dst}/${s.spi}`)).size, m.states.length);
  });

  it("A's OUT state to B is B's IN state from A: same SPI, same derived key; other pairs differ", () => {
    const onA = model(A, [B], KEY3).states.find((s) => s.direction === "out");
    const onB = model(B, [A], KEY3).states.find((s) => s.direction === "in");
    assert.ok(onA && onB);
    assert.equal(onA.spi, onB.spi);
    assert.equal(onA.spi, wireSpi(3, A.ip, B.ip));
    assert.deepEqual(onA.algorithmArgs, onB.algorithmArgs);
    // derived from (A, B, bootA, bootB), not the global key itself
    assert.notEqual(onA.algorithmArgs[2], "0x0102030405060708090a0b0c0d0e0f1011121314");
    const reverse = model(B, [A], KEY3).states.find((s) => s.direction === "out");
    assert.notDeepEqual(reverse?.algorithmArgs, onA.algorithmArgs);
  });

  it("the ip xfrm commands: tunnel-mode ESP between node IPs, pod CIDR selectors, block catch-all", () => {
    const m = model(A, [B], KEY3);
    const out = m.states.find((s) => s.direction === "out");
    assert.ok(out);
    const argv = stateAddArgv(out);
    assert.deepEqual(argv.slice(0, 20), [
      "ip",
      "xfrm",
      "state",
      "add",
      "src",
      A.ip,
      "dst",
      B.ip,
      "proto",
      "esp",
      "spi",
      `0x${out.spi.toString(16).padStart(8, "0")}`,
      "reqid",
      "1",
      "mode",
      "tunnel",
      "replay-window",
      "1024",
      "flag",
      "esn",
    ]);
    assert.deepEqual([argv[20], argv[21], argv[23]], ["aead", "rfc4106(gcm(aes))", "128"]);
    assert.match(argv[22], /^0x[0-9a-f]{40}$/);
    assert.deepEqual(
      m.policies.map((p) => policyArgv("update", p).slice(4).join(" ")),
      [
        `src 10.250.1.0/24 dst 10.250.2.0/24 dir out priority 100 action allow tmpl src ${A.ip} dst ${B.ip} proto esp reqid 1 mode tunnel`,
        `src 10.250.2.0/24 dst 10.250.1.0/24 dir fwd priority 100 action allow tmpl src ${B.ip} dst ${A.ip} proto esp reqid 1 mode tunnel`,
        `src 10.250.2.0/24 dst 10.250.1.0/24 dir in priority 100 action allow tmpl src ${B.ip} dst ${A.ip} proto esp reqid 1 mode tunnel`,
        "src 10.250.1.0/24 dst 10.250.0.0/16 dir out priority 4000 action block",
        "src 10.250.1.0/24 dst 10.251.0.0/16 dir out priority 4000 action block",
      ],
    );
  });

  it("a remote node with a bad boot ID is skipped (its traffic falls under the block policy)", () => {
    const m = model(A, [B, { ...R, bootId: "short" }], KEY3);
    assert.deepEqual(
      m.skipped.map((s) => s.node),
      ["c2/r"],
    );
    assert.match(m.skipped[0].reason, /shorter than 36/);
    assert.ok(!m.states.some((s) => s.node === "c2/r"));
    assert.ok(m.policies.some((p) => p.action === "block" && p.dst === "10.251.0.0/16"));
  });

  it("rotation 3 → 3+4 → 4: new states before the old OUT state goes, old IN state last", () => {
    const v1 = model(A, [B], KEY3);
    const v2 = model(A, [B], `${KEY3}\n${KEY4}`);
    const v3 = model(A, [B], KEY4);
    const describeCommand = (argv: string[]) => `${argv[3]} ${argv[argv.indexOf("spi") + 1]}`;
    const spi = (k: number, src: string, dst: string) =>
      `0x${wireSpi(k, src, dst).toString(16).padStart(8, "0")}`;
    assert.deepEqual(
      planXfrmChanges(v1, v2).map((c) => describeCommand(c.argv)),
      [`add ${spi(4, A.ip, B.ip)}`, `add ${spi(4, B.ip, A.ip)}`, `delete ${spi(3, A.ip, B.ip)}`],
    );
    assert.deepEqual(
      planXfrmChanges(v2, v3).map((c) => describeCommand(c.argv)),
      [`delete ${spi(3, B.ip, A.ip)}`],
    );
    assert.deepEqual(planXfrmChanges(v3, v3), []);
  });

  it("first install puts the block policies before any state or tunnel policy", () => {
    const kinds = planXfrmChanges(undefined, model(A, [B], KEY3)).map((c) =>
      c.kind === "policy" ? (c.argv.includes("block") ? "block" : "tunnel") : "state",
    );
    assert.deepEqual(kinds, ["block", "block", "state", "state", "tunnel", "tunnel", "tunnel"]);
  });

  it("a pair held back during a rotation keeps its OUT state on the key the peer still advertises", () => {
    const both = parseIpsecKeys(`${KEY3}\n${KEY4}`);
    const m = buildXfrmModel({
      local: A,
      remotes: [{ ...B, keys: { current: both.all[0], all: both.all } }, R],
      keys: both,
      encryptedPrefixes: MESH,
    });
    assert.deepEqual(
      m.states.filter((s) => s.direction === "out").map((s) => [s.node, s.keySpi]),
      [
        ["c1/b", 3],
        ["c2/r", 4],
      ],
    );
    // inbound accepts both keys from everyone, whatever they send with
    assert.equal(m.states.filter((s) => s.direction === "in" && s.node === "c1/b").length, 2);
  });

  it("the persisted model carries no key material yet diffs like the full one", () => {
    const full = model(A, [B, R], KEY3);
    const stored = JSON.parse(JSON.stringify(withoutKeyMaterial(full)));
    assert.equal(JSON.stringify(stored).includes("0102030405060708090a0b0c0d0e0f1011121314"), false);
    for (const state of full.states)
      assert.equal(JSON.stringify(stored).includes(state.algorithmArgs[2]), false);
    assert.deepEqual(planXfrmChanges(stored, full), []);
    // a peer that rebooted (new boot id → new derived key, same SPI) is replaced
    const rebooted = model(A, [B, { ...R, bootId: boot("d") }], KEY3);
    const commands = planXfrmChanges(stored, rebooted).map((c) => `${c.argv[3]} ${c.argv[5]}>${c.argv[7]}`);
    assert.deepEqual(commands, [
      `delete ${A.ip}>${R.ip}`,
      `add ${A.ip}>${R.ip}`,
      `delete ${R.ip}>${A.ip}`,
      `add ${R.ip}>${A.ip}`,
    ]);
  });

  it("a state add says how to remove a same-id leftover (failed sync, earlier agent)", () => {
    const [first] = planXfrmChanges(undefined, model(A, [B], KEY3)).filter((c) => c.kind === "state");
    const state = model(A, [B], KEY3).states[0];
    assert.deepEqual(first.replaces, stateDeleteArgv(state));
  });

  it("reads ip xfrm state and counts ESP states per peer and direction", () => {
    const text = `src ${A.ip} dst ${B.ip}
\tproto esp spi 0x3a1b2c3d reqid 1 mode tunnel
\treplay-window 0 flag esn
\taead rfc4106(gcm(aes)) 0x00 128
src ${B.ip} dst ${A.ip}
\tproto esp spi 0x31111111 reqid 1 mode tunnel
\treplay-window 1024 flag esn
src ${B.ip} dst ${A.ip}
\tproto esp spi 0x42222222 reqid 1 mode tunnel
`;
    const installed = parseXfrmStates(text);
    assert.deepEqual(installed[0], { src: A.ip, dst: B.ip, spi: 0x3a1b2c3d });
    assert.equal(installed.length, 3);
    assert.deepEqual(countPeerStates(A, [B, R], installed), {
      peers: { "c1/b": { in: 2, out: 1 }, "c2/r": { in: 0, out: 0 } },
      total: { in: 2, out: 1 },
    });
  });

  it("probe error classification", () => {
    assert.equal(classifyProbeError("Error: Requested AEAD algorithm not found."), "no-esp");
    assert.equal(classifyProbeError("Error: Requested type not found."), "no-esp");
    assert.equal(classifyProbeError("RTNETLINK answers: Operation not permitted"), "other");
  });
});
