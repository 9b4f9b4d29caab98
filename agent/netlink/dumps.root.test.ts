// Route and neighbour dumps over rtnetlink against what iproute2 lists, in a throwaway netns.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { inNetworkNamespace, interfaceIndex } from "../../bpf/libbpf-ts/index.js";
import { runSync } from "../../lib/exec.js";
import {
  dumpNeighbours4,
  dumpRoutes4,
  NUD_PERMANENT,
  parseNeighbour,
  parseRoute,
  RT_TABLE_MAIN,
} from "./dumps.js";
import { RtnetlinkSocket } from "./socket.js";

const netns = `cmnd${randomBytes(2).toString("hex")}`;
const path = `/run/netns/${netns}`;
const ip = (...argv: string[]) => runSync(["ip", "-n", netns, ...argv]);

describe("rtnetlink dumps", () => {
  let ifindex = 0;
  before(() => {
    runSync(["ip", "netns", "add", netns]);
    ip("link", "add", "va", "type", "veth", "peer", "name", "vb");
    ip("link", "set", "va", "up");
    ip("link", "set", "vb", "up");
    ip("addr", "add", "10.0.0.2/24", "dev", "va");
    ip("route", "add", "10.1.0.0/16", "via", "10.0.0.1", "dev", "va", "onlink");
    ip("route", "add", "10.2.3.4", "dev", "va", "scope", "link");
    ip("route", "add", "default", "via", "10.0.0.1", "dev", "va");
    ip("route", "add", "10.9.0.0/16", "dev", "va", "table", "100");
    ip("route", "add", "10.3.0.0/16", "dev", "vb");
    ip("neigh", "add", "10.0.0.1", "lladdr", "02:AA:bb:00:00:01", "dev", "va", "nud", "permanent");
    ip("neigh", "add", "10.0.0.9", "lladdr", "02:aa:bb:00:00:09", "dev", "va", "nud", "stale");
    ip("neigh", "add", "10.0.0.7", "lladdr", "02:aa:bb:00:00:07", "dev", "vb", "nud", "permanent");
    ifindex = inNetworkNamespace(path, () => interfaceIndex("va"));
  });
  after(() => runSync(["ip", "netns", "del", netns]));

  const dump = async () => {
    const socket = RtnetlinkSocket.open(path);
    try {
      return {
        routes: (await socket.dump("route show", dumpRoutes4)).map(parseRoute),
        neighbours: (await socket.dump("neigh show", dumpNeighbours4)).map(parseNeighbour),
      };
    } finally {
      socket.close();
    }
  };

  it("lists a device's main-table routes as `ip -4 route show dev` does", async () => {
    const { routes } = await dump();
    const ours = routes
      .filter((r) => r?.table === RT_TABLE_MAIN && r.oif === ifindex)
      .map((r) => `${r?.dst} ${r?.gateway ?? "-"}`)
      .sort();
    const theirs = (
      JSON.parse(ip("-j", "-4", "route", "show", "dev", "va")) as { dst: string; gateway?: string }[]
    )
      .map((r) => `${r.dst} ${r.gateway ?? "-"}`)
      .sort();
    assert.deepEqual(ours, theirs);
    assert.ok(
      ours.includes("10.1.0.0/16 10.0.0.1") &&
        ours.includes("10.2.3.4 -") &&
        ours.includes("default 10.0.0.1"),
    );
  });

  it("lists a device's permanent neighbours as `ip -4 neigh show dev … nud permanent` does", async () => {
    const { neighbours } = await dump();
    const ours = neighbours
      .filter((n) => n?.ifindex === ifindex && ((n?.state ?? 0) & NUD_PERMANENT) !== 0)
      .map((n) => `${n?.dst} ${n?.lladdr}`);
    const theirs = (
      JSON.parse(ip("-j", "-4", "neigh", "show", "dev", "va", "nud", "permanent")) as {
        dst: string;
        lladdr: string;
      }[]
    ).map((n) => `${n.dst} ${n.lladdr}`);
    assert.deepEqual(ours, theirs);
    assert.deepEqual(ours, ["10.0.0.1 02:aa:bb:00:00:01"]);
  });
});
