/**
 * `meshctl install` and `uninstall` on a cluster as kind leaves it (`meshctl lab up --no-install`:
 * nodes NotReady, no CNI): the lab kubelet runs the DaemonSet's and Deployment's pods from the
 * mesh image of this checkout, so this is the kind quickstart's install step, pods and all.
 * Uninstall must leave nothing on the nodes: no CNI files, no pins, no links.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isEndpointInterface } from "../agent/endpoints/naming.js";
import { nodeFile, nodePinRoot } from "../lab/node-files.js";
import { labDir } from "../lab/state.js";
import { AGENT_LINKS, NodePaths } from "../lib/install/names.js";
import { waitFor } from "../lib/process.js";
import {
  kubectl,
  kubectlOk,
  type LabFixture,
  labFixture,
  labUpArgs,
  meshctl,
} from "../testing/lab-fixture.js";

const NODES = ["c1-control-plane", "c1-worker"];

function linksIn(netns: string): string[] {
  const result = spawnSync("ip", ["-n", netns, "-j", "link", "show"], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return (JSON.parse(result.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

describe("meshctl install and uninstall on a lab cluster without the mesh (root)", {
  timeout: 900_000,
}, () => {
  let fixture: LabFixture;
  const netns = (node: string) => `${fixture.name}-${node}`;
  const onNodes = (node: string) => ({
    conflist: nodeFile(labDir(fixture.name), node, join(NodePaths.cniConfDir, NodePaths.cniConfFile)),
    plugin: nodeFile(labDir(fixture.name), node, join(NodePaths.cniBinDir, NodePaths.cniPluginName)),
    pins: nodePinRoot(labDir(fixture.name), node),
    socket: nodeFile(labDir(fixture.name), node, NodePaths.agentSocket),
  });

  before(async () => {
    fixture = await labFixture([{ workers: 1 }]);
    const result = meshctl([...labUpArgs(fixture), "--no-install"], fixture.env);
    assert.equal(result.status, 0, result.stderr);
  });

  after(() => {
    if (!fixture) return;
    meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });

  it("a cluster without the mesh has NotReady nodes and no mesh pod", () => {
    const nodes = JSON.parse(kubectlOk(fixture, "c1", ["get", "nodes", "-o", "json"])).items as {
      status: { conditions: { type: string; status: string }[] };
    }[];
    assert.equal(nodes.length, 2);
    for (const node of nodes)
      assert.equal(node.status.conditions.find((c) => c.type === "Ready")?.status, "False");
    for (const node of NODES) assert.ok(!existsSync(onNodes(node).conflist), `no CNI config on ${node}`);
  });

  it("install --wait runs the agents and the clustermesh-apiserver as pods; nodes become Ready", async () => {
    const controlPlaneIp = JSON.parse(
      kubectlOk(fixture, "c1", ["get", "node", "c1-control-plane", "-o", "json"]),
    ).status.addresses.find((a: { type: string }) => a.type === "InternalIP").address;
    const install = meshctl(
      [
        "install",
        "--context",
        `${fixture.name}-c1`,
        "--cluster-name",
        "c1",
        "--cluster-id",
        "1",
        "--k8s-service-host",
        controlPlaneIp,
        "--wait",
      ],
      fixture.env,
    );
    assert.equal(install.status, 0, install.stderr);
    assert.match(install.stderr, /agents 2\/2 ready .*clustermesh-apiserver 1\/1 ready/);
    await waitFor(
      "both nodes Ready",
      () =>
        (
          JSON.parse(kubectlOk(fixture, "c1", ["get", "nodes", "-o", "json"])).items as {
            status: { conditions: { type: string; status: string }[] };
          }[]
        ).every((n) => n.status.conditions.find((c) => c.type === "Ready")?.status === "True"),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const workloads = kubectlOk(fixture, "c1", ["-n", "kube-system", "get", "ds,deploy", "--no-headers"]);
    assert.match(workloads, /daemonset\.apps\/clustermesh-agent\s+2\s+2\s+2\s/);
    assert.match(workloads, /deployment\.apps\/clustermesh-apiserver\s+1\/1\s/);
    for (const node of NODES) {
      const files = onNodes(node);
      assert.ok(existsSync(files.conflist), `the install-cni init container wrote the conflist on ${node}`);
      const file = spawnSync("file", ["-L", files.plugin], { encoding: "utf8" });
      assert.match(file.stdout, /ELF 64-bit .*statically linked/, "the CNI plugin is a static binary");
      assert.ok(readdirSync(files.pins).length > 0, `the agent pinned its datapath on ${node}`);
      assert.ok(linksIn(netns(node)).includes("cm_vxlan"), `the agent's tunnel device on ${node}`);
    }
    const status = meshctl(["status", "--context", `${fixture.name}-c1`], fixture.env);
    assert.equal(status.status, 0, status.stderr);
  });

  it("uninstall removes the mesh from the cluster and everything it put on the nodes", () => {
    const uninstall = meshctl(["uninstall", "--context", `${fixture.name}-c1`], fixture.env);
    assert.equal(uninstall.status, 0, uninstall.stderr);
    const left = kubectl(fixture, "c1", [
      "-n",
      "kube-system",
      "get",
      "pods,ds,deploy",
      "-l",
      "app.kubernetes.io/part-of=clustermesh",
      "--no-headers",
    ]);
    assert.equal(left.stdout.trim(), "", "no mesh object or pod left");
    for (const node of NODES) {
      const files = onNodes(node);
      for (const path of [files.conflist, files.plugin, files.pins, files.socket])
        assert.ok(!existsSync(path), `${path} left on ${node}`);
      const links = linksIn(netns(node));
      for (const link of AGENT_LINKS) assert.ok(!links.includes(link), `${link} left on ${node}`);
      // pods still running (CoreDNS) keep their veths, but not the agent's filters on them
      for (const link of links.filter(isEndpointInterface)) {
        const qdiscs = spawnSync("tc", ["-n", netns(node), "qdisc", "show", "dev", link], {
          encoding: "utf8",
        });
        assert.doesNotMatch(qdiscs.stdout, /clsact/, `the agent's clsact filters left on ${link} on ${node}`);
      }
    }
  });
});
