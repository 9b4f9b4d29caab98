// An agent restart: the datapath is loaded again over the same pins. Maps keep their contents,
// attachments are updated in place (same link or filter, no gap), and stale pins are replaced.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runSync } from "../../lib/exec.js";
import { BpfLink, inNetworkNamespace, interfaceIndex } from "../libbpf-ts/index.js";
import { mountPrivateBpffs, type PrivateBpffs, uniqueSuffix } from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { Proto } from "./codecs.js";
import { Datapath } from "./loader.js";
import { flattenEndpointPolicy, policyMapKeyString } from "./policy-entries.js";
import { PolicyMaps } from "./policy-maps.js";

function linkInfoOf(datapath: Datapath, name: string) {
  const link = BpfLink.openPinned(datapath.linkPath(name));
  try {
    return link.info();
  } finally {
    link.close();
  }
}

describe("datapath across an agent restart", () => {
  const netns = `dpr${uniqueSuffix()}`;
  const netnsPath = `/run/netns/${netns}`;
  let bpffs: PrivateBpffs;
  let pinRoot: string;
  const ifindexOf = (name: string) => inNetworkNamespace(netnsPath, () => interfaceIndex(name));

  before(() => {
    bpffs = mountPrivateBpffs();
    pinRoot = join(bpffs.path, "node");
    runSync(["ip", "netns", "add", netns]);
    runSync([
      "nsenter",
      `--net=${netnsPath}`,
      "sh",
      "-c",
      "ip link add lxc1 type veth peer name lxc1p && ip link set lxc1 up",
    ]);
  });
  after(() => {
    if (existsSync(netnsPath)) runSync(["ip", "netns", "del", netns]);
    bpffs?.cleanup();
  });

  /** Program ids of the clsact filters on lxc1 in one direction. */
  const filterPrograms = (direction: "ingress" | "egress"): number[] => {
    const filters = JSON.parse(
      runSync(["ip", "netns", "exec", netns, "tc", "-j", "filter", "show", "dev", "lxc1", direction]),
    ) as Array<{ options?: { prog?: { id: number } } }>;
    return filters.flatMap((filter) => (filter.options?.prog ? [filter.options.prog.id] : []));
  };

  it("replaces an endpoint's clsact filters in place, and changing the attach mode leaves one attachment", () => {
    const first = Datapath.load({ pinRoot });
    first.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
    const [ingressBefore] = filterPrograms("ingress");
    assert.equal(filterPrograms("egress").length, 1, "to-pod filter");
    first.close();

    const second = Datapath.load({ pinRoot });
    second.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
    const ingressAfter = filterPrograms("ingress");
    assert.equal(ingressAfter.length, 1, "still one from-pod filter");
    assert.notEqual(ingressAfter[0], ingressBefore, "running the newly loaded program");
    second.close();

    const tcx = Datapath.load({ pinRoot, endpointAttachMode: "tcx" });
    tcx.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
    assert.ok(existsSync(tcx.linkPath("from-pod-ep1")), "tcx link pinned");
    assert.deepEqual([...filterPrograms("ingress"), ...filterPrograms("egress")], [], "filters removed");
    tcx.close();

    const back = Datapath.load({ pinRoot });
    try {
      back.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
      assert.ok(!existsSync(back.linkPath("from-pod-ep1")), "tcx link unpinned");
      assert.equal(filterPrograms("ingress").length + filterPrograms("egress").length, 2, "two filters");
    } finally {
      back.detachAll();
      back.close();
    }
    assert.deepEqual([...filterPrograms("ingress"), ...filterPrograms("egress")], [], "detached");
  });

  it("keeps map contents and updates pinned links in place", () => {
    const first = Datapath.load({ pinRoot, endpointAttachMode: "tcx" });
    const services = [
      {
        frontend: { address: "10.96.0.1", port: 443, proto: Proto.TCP },
        backends: [{ address: "10.1.0.5", port: 6443 }],
      },
    ];
    reconcileMaps(first.maps, { services, endpoints: [], remoteNodes: [], ipcache: [] });
    first.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
    // the node-level hooks, on stand-in devices: the underlay (from-netdev) and the tunnel (both ways)
    first.attachNetdev(ifindexOf("lxc1p"), { netnsPath });
    first.attachTunnel(ifindexOf("lxc1p"), { netnsPath });
    const linkBefore = BpfLink.openPinned(first.linkPath("from-pod-ep1"));
    const before = linkBefore.info();
    linkBefore.close();
    const nodeLinks = ["from-netdev", "tunnel-ingress", "tunnel-egress"];
    const nodeLinksBefore = nodeLinks.map((name) => linkInfoOf(first, name));
    first.close();

    const second = Datapath.load({ pinRoot, endpointAttachMode: "tcx" });
    try {
      assert.deepEqual(
        reconcileMaps(second.maps, { services, endpoints: [], remoteNodes: [], ipcache: [] }),
        [],
        "the maps survived: nothing to write",
      );
      second.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
      const linkAfter = BpfLink.openPinned(second.linkPath("from-pod-ep1"));
      const now = linkAfter.info();
      linkAfter.close();
      assert.equal(now.id, before.id, "same link: updated in place");
      assert.notEqual(now.programId, before.programId, "running the newly loaded program");
      assert.equal(now.ifindex, ifindexOf("lxc1"));
      second.attachNetdev(ifindexOf("lxc1p"), { netnsPath });
      second.attachTunnel(ifindexOf("lxc1p"), { netnsPath });
      nodeLinks.forEach((name, index) => {
        const after = linkInfoOf(second, name);
        assert.equal(after.id, nodeLinksBefore[index].id, `${name}: same link`);
        assert.notEqual(after.programId, nodeLinksBefore[index].programId, `${name}: new program`);
      });

      // the endpoint's veth is re-created: the stale pin is replaced by a link on the new device
      runSync([
        "nsenter",
        `--net=${netnsPath}`,
        "sh",
        "-c",
        "ip link del lxc1 && ip link add lxc1 type veth peer name lxc1p",
      ]);
      second.attachEndpoint("ep1", ifindexOf("lxc1"), { netnsPath });
      const replaced = BpfLink.openPinned(second.linkPath("from-pod-ep1"));
      assert.equal(replaced.info().ifindex, ifindexOf("lxc1"));
      assert.notEqual(replaced.info().id, before.id);
      replaced.close();
    } finally {
      second.detachAll();
      second.close();
    }
  });

  it("keeps network policy across a restart: endpoint flags (an existing member, same size) and cm_policy", () => {
    const flat = flattenEndpointPolicy(
      {
        enforced: { ingress: true, egress: false },
        entries: [
          [
            { direction: "ingress", identity: 0x02_0100, protocol: Proto.TCP, port: 80, endPort: 80 },
            {
              verdict: "allow",
              rule: { kind: "NetworkPolicy", namespace: "d", name: "web", direction: "ingress", index: 0 },
            },
          ],
        ],
      },
      { policyId: 7, ruleNumber: () => 1 },
    );
    const desired = {
      services: [],
      endpoints: [
        {
          address: "10.1.0.9",
          ifindex: ifindexOf("lxc1"),
          identity: 0x01_0100,
          mac: "02:aa:00:00:00:09",
          nodeMac: "02:bb:00:00:00:09",
          policyFlags: flat.flags,
        },
      ],
      remoteNodes: [],
      ipcache: [],
    };
    const first = Datapath.load({ pinRoot });
    const firstPolicy = PolicyMaps.open(pinRoot);
    try {
      reconcileMaps(first.maps, desired);
      firstPolicy.write([...flat.entries.values()], []);
    } finally {
      firstPolicy.close();
      first.close();
    }
    const second = Datapath.load({ pinRoot });
    const secondPolicy = PolicyMaps.open(pinRoot);
    try {
      assert.deepEqual(reconcileMaps(second.maps, desired), [], "the endpoint and its policy flags survived");
      assert.deepEqual(
        secondPolicy.entries().map(([key]) => policyMapKeyString(key)),
        [...flat.entries.keys()],
        "cm_policy survived",
      );
      secondPolicy.write(
        [],
        [...flat.entries.values()].map(([key]) => key),
      );
      reconcileMaps(second.maps, { ...desired, endpoints: [] });
    } finally {
      secondPolicy.close();
      second.close();
    }
  });
});
