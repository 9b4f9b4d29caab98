import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LabConfigError } from "./config-error.js";
import { parseKindConfig } from "./kind-config.js";
import { chooseLabName } from "./lab-name.js";
import { parseMeshFile } from "./mesh-file.js";
import { checkHostRoutes, planLab } from "./plan.js";
import { missingKernelFeatures, REQUIRED_KERNEL_FEATURES } from "./preflight.js";

const kind = (body: string) => `kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n${body}`;
const c1 = kind(
  "name: c1\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\nnetworking:\n  podSubnet: 10.1.0.0/16\n  serviceSubnet: 10.101.0.0/16\n  disableDefaultCNI: true\n  kubeProxyMode: none\n",
);
const c2 = kind(
  "name: c2\nnodes:\n- role: control-plane\nnetworking:\n  podSubnet: 10.2.0.0/16\n  serviceSubnet: 10.102.0.0/16\n",
);
const noMesh = { clusterIds: new Map<string, number>() };

function rejects(fn: () => unknown, file: string, field: string, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof LabConfigError, `expected LabConfigError, got ${error}`);
    assert.equal(error.source, file);
    assert.equal(error.field, field);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

describe("kind config", () => {
  it("reads what the lab needs, with kind's defaults", () => {
    const cluster = parseKindConfig("c1.yaml", c1);
    assert.equal(cluster.name, "c1");
    assert.deepEqual(
      cluster.nodes.map((n) => n.role),
      ["control-plane", "worker", "worker"],
    );
    assert.equal(cluster.kubeProxyMode, "none");
    assert.equal(cluster.disableDefaultCNI, true);
    const minimal = parseKindConfig("m.yaml", kind("name: m\n"));
    assert.deepEqual(
      minimal.nodes.map((n) => n.role),
      ["control-plane"],
    );
    assert.equal(minimal.podSubnets[0].prefixLength, 16);
  });

  it("names the file and field of each bad input", () => {
    rejects(() => parseKindConfig("a.yaml", kind("nodes:\n- role: worker\n")), "a.yaml", "name", /required/);
    rejects(
      () => parseKindConfig("a.yaml", kind("name: a\nnodes:\n- role: control-plane\n- role: master\n")),
      "a.yaml",
      "nodes[1].role",
      /unknown role "master"/,
    );
    rejects(() => parseKindConfig("a.yaml", kind("name: A_b\n")), "a.yaml", "name", /lower-case/);
    rejects(
      () => parseKindConfig("a.yaml", kind("name: a\nnodez: []\n")),
      "a.yaml",
      "nodez",
      /unknown field/,
    );
    rejects(
      () => parseKindConfig("a.yaml", kind("name: a\nnetworking:\n  podSubnet: 10.1.0.0\n")),
      "a.yaml",
      "networking.podSubnet",
      /not a CIDR/,
    );
    rejects(
      () => parseKindConfig("a.yaml", kind("name: a\nnetworking:\n  kubeProxyMode: userspace\n")),
      "a.yaml",
      "networking.kubeProxyMode",
      /unknown mode/,
    );
    rejects(() => parseKindConfig("a.yaml", "kind: Pod\n"), "a.yaml", "kind", /must be "Cluster"/);
    rejects(() => parseKindConfig("a.yaml", "a: [\n"), "a.yaml", "", /not valid YAML/);
    rejects(
      () => parseKindConfig("a.yaml", kind("name: a\nnodes:\n- role: worker\n")),
      "a.yaml",
      "nodes",
      /exactly one control-plane/,
    );
  });
});

describe("mesh file", () => {
  it("reads ids and the node subnet and rejects duplicates and ranges", () => {
    const mesh = parseMeshFile("mesh.yaml", "nodeSubnet: 172.30.0.0/24\nclusters:\n  c1: { id: 7 }\n");
    assert.equal(mesh.clusterIds.get("c1"), 7);
    rejects(
      () => parseMeshFile("mesh.yaml", "clusters:\n  c1: { id: 1 }\n  c2: { id: 1 }\n"),
      "mesh.yaml",
      "clusters.c2.id",
      /already the id of cluster c1/,
    );
    rejects(
      () => parseMeshFile("mesh.yaml", "clusters:\n  c1: { id: 256 }\n"),
      "mesh.yaml",
      "clusters.c1.id",
      /1\.\.255/,
    );
    rejects(() => parseMeshFile("mesh.yaml", "subnet: x\n"), "mesh.yaml", "subnet", /unknown field/);
  });
});

describe("lab plan", () => {
  const clusters = [parseKindConfig("c1.yaml", c1), parseKindConfig("c2.yaml", c2)];

  it("names nodes like kind and gives every node an address on the lab network", () => {
    const plan = planLab("t1", clusters, noMesh);
    assert.deepEqual(
      plan.clusters.map((c) => [c.name, c.id]),
      [
        ["c1", 1],
        ["c2", 2],
      ],
    );
    assert.deepEqual(
      plan.clusters[0].nodes.map((n) => [n.name, n.netns, n.hostInterface, n.ip]),
      [
        ["c1-control-plane", "t1-c1-control-plane", "t1-n1", "172.30.0.2"],
        ["c1-worker", "t1-c1-worker", "t1-n2", "172.30.0.3"],
        ["c1-worker2", "t1-c1-worker2", "t1-n3", "172.30.0.4"],
      ],
    );
    assert.equal(plan.clusters[1].etcdEndpoint, "https://172.30.0.5:2379");
    assert.equal(plan.bridge.address, "172.30.0.1/24");
    assert.deepEqual(
      plan.blackholes.map((r) => r.prefix),
      ["10.1.0.0/16", "10.101.0.0/16", "10.2.0.0/16", "10.102.0.0/16"],
    );
    for (const node of plan.clusters.flatMap((c) => c.nodes)) assert.ok(node.hostInterface.length <= 15);
  });

  it("takes ids from the mesh file and assigns the rest in order", () => {
    const plan = planLab("t1", clusters, { clusterIds: new Map([["c2", 1]]) });
    assert.deepEqual(
      plan.clusters.map((c) => c.id),
      [2, 1],
    );
  });

  it("refuses a mesh file entry no config has, naming the cluster and every file", () => {
    rejects(
      () => planLab("t1", clusters, { file: "mesh.yaml", clusterIds: new Map([["c3", 3]]) }),
      "mesh.yaml",
      "clusters.c3",
      /no --config has a cluster named "c3" \(the configs name c1 \(c1.yaml\), c2 \(c2.yaml\)\)/,
    );
  });

  it("refuses duplicate names and overlapping subnets, naming the file and field", () => {
    rejects(
      () => planLab("t1", [clusters[0], clusters[0]], noMesh),
      "c1.yaml",
      "name",
      /already used by c1.yaml/,
    );
    const overlapping = parseKindConfig(
      "c3.yaml",
      kind("name: c3\nnetworking:\n  podSubnet: 10.1.128.0/17\n  serviceSubnet: 10.103.0.0/16\n"),
    );
    rejects(
      () => planLab("t1", [clusters[0], overlapping], noMesh),
      "c3.yaml",
      "networking.podSubnet",
      /10.1.128.0\/17 overlaps 10.1.0.0\/16 \(c1.yaml: networking.podSubnet\)/,
    );
    rejects(() => planLab("Bad-Name", clusters, noMesh), "--name", "", /lower-case/);
  });

  it("refuses prefixes that overlap a host route but ignores default routes", () => {
    const plan = planLab("t1", clusters, noMesh);
    checkHostRoutes(
      plan,
      [
        { dst: "default", dev: "eth0" },
        { dst: "192.0.2.0/24", dev: "eth0" },
      ],
      undefined,
    );
    rejects(
      () => checkHostRoutes(plan, [{ dst: "10.102.5.0/24", dev: "eth0" }], undefined),
      "c2.yaml",
      "networking.serviceSubnet",
      /overlaps the host route 10.102.5.0\/24 dev eth0/,
    );
    rejects(
      () => checkHostRoutes(plan, [{ dst: "172.30.0.7", dev: "tun0" }], "mesh.yaml"),
      "mesh.yaml",
      "nodeSubnet",
      /overlaps the host route/,
    );
  });
});

describe("kernel features", () => {
  it("finds what a kernel config lacks; tcx or clsact either suffices", () => {
    const all = REQUIRED_KERNEL_FEATURES.map((f) => `${f.options[0]}=y`).join("\n");
    assert.deepEqual(missingKernelFeatures(all), []);
    const noVxlan = all.replace("CONFIG_VXLAN=y", "# CONFIG_VXLAN is not set");
    assert.deepEqual(
      missingKernelFeatures(noVxlan).map((f) => f.options[0]),
      ["CONFIG_VXLAN"],
    );
    const clsactOnly = all.replace("CONFIG_NET_XGRESS=y", "CONFIG_NET_SCH_INGRESS=m");
    assert.deepEqual(missingKernelFeatures(clsactOnly), []);
  });
});

describe("lab name rule", () => {
  it("takes --name, else the only lab, else lab; several labs need --name", () => {
    assert.equal(chooseLabName("demo", ["other"]), "demo");
    assert.equal(chooseLabName(undefined, ["demo"]), "demo");
    assert.equal(chooseLabName(undefined, []), "lab");
    assert.equal(chooseLabName(undefined, ["demo", "lab"]), "lab");
    rejects(
      () => chooseLabName(undefined, ["b", "a"]),
      "--name",
      "",
      /there are 2 labs \(a, b\); say which one with --name/,
    );
    rejects(() => chooseLabName("Bad", []), "--name", "", /lower-case/);
  });
});
