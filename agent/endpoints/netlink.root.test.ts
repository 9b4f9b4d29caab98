// The endpoint's kernel objects made over rtnetlink from the agent's process, checked with
// iproute2 in a throwaway node netns and pod netns (nothing touches the host's namespace).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { runSync } from "../../lib/exec.js";
import { NetlinkError } from "../netlink/socket.js";
import { POD_GATEWAY } from "./naming.js";
import { type EndpointLinkSpec, KernelNetlink } from "./netlink.js";

const id = randomBytes(2).toString("hex");
const nodeNs = `cmnl${id}n`;
const podNs = `cmnl${id}p`;
const ipIn = (netns: string, ...argv: string[]) =>
  JSON.parse(runSync(["ip", "-n", netns, "-j", ...argv]) || "[]") as Record<string, unknown>[];

describe("endpoint links over rtnetlink", () => {
  const netlink = new KernelNetlink(`/run/netns/${nodeNs}`);
  const spec: EndpointLinkSpec = {
    hostIf: "lxc0123456789a",
    hostMac: "02:11:22:33:44:55",
    podMac: "0a:11:22:33:44:66",
    netnsPath: `/run/netns/${podNs}`,
    podIf: "eth0",
    podIp: "10.9.8.7",
    mtu: 1450,
  };

  before(() => {
    runSync(["ip", "netns", "add", nodeNs]);
    runSync(["ip", "netns", "add", podNs]);
  });
  after(() => {
    for (const netns of [nodeNs, podNs]) runSync(["ip", "netns", "del", netns]);
  });

  it("creates the veth pair, the pod's address, routes and gateway neighbour", async () => {
    await netlink.create(spec);
    const [host] = ipIn(nodeNs, "link", "show", spec.hostIf);
    assert.equal(host.address, spec.hostMac);
    assert.equal(host.mtu, spec.mtu);
    assert.ok((host.flags as string[]).includes("UP"));
    assert.deepEqual(
      ipIn(nodeNs, "route", "show").map((r) => [r.dst, r.dev, r.scope]),
      [[spec.podIp, spec.hostIf, "link"]],
    );
    const [pod] = ipIn(podNs, "link", "show", spec.podIf);
    assert.equal(pod.address, spec.podMac);
    assert.equal(pod.mtu, spec.mtu);
    assert.ok((pod.flags as string[]).includes("UP"));
    assert.ok((ipIn(podNs, "link", "show", "lo")[0].flags as string[]).includes("UP"));
    const [addresses] = ipIn(podNs, "-4", "addr", "show", "dev", spec.podIf);
    assert.deepEqual(
      (addresses.addr_info as { local: string; prefixlen: number }[]).map((a) => `${a.local}/${a.prefixlen}`),
      [`${spec.podIp}/32`],
    );
    assert.deepEqual(
      ipIn(podNs, "route", "show").map((r) => [r.dst, r.gateway ?? null, r.dev, r.scope ?? "global"]),
      [
        ["default", POD_GATEWAY, spec.podIf, "global"],
        [POD_GATEWAY, null, spec.podIf, "link"],
      ],
    );
    const [neigh] = ipIn(podNs, "neigh", "show", POD_GATEWAY);
    assert.equal(neigh.lladdr, spec.hostMac);
    assert.deepEqual(neigh.state, ["PERMANENT"]);
  });

  it("refuses to create over an existing link, with the errno", async () => {
    await assert.rejects(
      () => netlink.create(spec),
      (error: unknown) => error instanceof NetlinkError && error.code === "EEXIST",
    );
  });

  it("removes the pair; removing what is absent succeeds", async () => {
    await netlink.remove(spec.hostIf);
    assert.deepEqual(ipIn(nodeNs, "link", "show", "type", "veth"), []);
    assert.deepEqual(ipIn(podNs, "link", "show", "type", "veth"), []);
    await netlink.remove(spec.hostIf);
  });
});
