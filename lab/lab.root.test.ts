import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Etcd3 } from "etcd3";
import { bundlePaths } from "../certs/store.js";
import { cgroup2Root } from "../lib/cgroup.js";
import { tlsFromFiles } from "../lib/etcd/client.js";
import { runJson } from "../lib/exec.js";
import { isRunning, waitFor } from "../lib/process.js";
import {
  kubectl,
  type LabFixture,
  labFixture,
  labUpArgs,
  meshctl,
  meshctlAsync,
} from "../testing/lab-fixture.js";
import { isMountPoint } from "./kernel-objects.js";
import { controlPlaneBinaries, corednsBinary } from "./kubernetes/binaries.js";
import { listNetns } from "./network.js";
import { LabJournal, labDir } from "./state.js";
import type { LabStatus } from "./status.js";
import { labUp } from "./up.js";

/** Asserts that nothing of the lab is left on the host. */
async function assertNothingLeft(
  fixture: LabFixture,
  pids: { pid: number; startTime: string }[] = [],
): Promise<void> {
  const namespaces = (await listNetns()).filter((ns) => ns.startsWith(`${fixture.name}-`));
  assert.deepEqual(namespaces, [], "network namespaces left");
  const links = await runJson<{ ifname: string }[]>(["ip", "-j", "link", "show"]);
  assert.deepEqual(
    links.map((l) => l.ifname).filter((n) => n.startsWith(`${fixture.name}-`)),
    [],
    "links left",
  );
  const routes = await runJson<{ dst: string }[]>(["ip", "-j", "route", "show", "table", "all"]);
  for (const prefix of fixture.prefixes) {
    assert.ok(!routes.some((r) => r.dst === prefix), `route ${prefix} left`);
  }
  for (const ref of pids) assert.ok(!isRunning(ref), `process ${ref.pid} left`);
  assert.ok(!existsSync(labDir(fixture.name)), "state directory left");
  assert.ok(!isMountPoint(join(labDir(fixture.name), "bpffs")), "bpffs left mounted");
  assert.ok(!existsSync(join(cgroup2Root() ?? "/nonexistent", `clustermesh-${fixture.name}`)), "cgroup left");
  assert.ok(!existsSync(`/dev/shm/clustermesh-${fixture.name}`), "etcd data left");
}

describe("meshctl lab (root: builds namespaces, links, etcd)", () => {
  let fixture: LabFixture;
  before(async () => {
    fixture = await labFixture();
  });
  after(() => {
    meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });

  it("up creates the nodes and an etcd per cluster that needs a client certificate; down removes everything", async () => {
    const up = meshctl(labUpArgs(fixture), fixture.env);
    assert.equal(up.status, 0, up.stderr);
    assert.match(up.stderr, /c1: cluster id 1/);

    const status = meshctl(["lab", "status", "--name", fixture.name, "-o", "json"]);
    assert.equal(status.status, 0, status.stderr);
    const lab = JSON.parse(status.stdout) as LabStatus;
    assert.equal(lab.complete, true);
    assert.deepEqual(
      lab.clusters.map((c) => [c.name, c.id, c.nodes.length]),
      [
        ["c1", 1, 2],
        ["c2", 2, 2],
      ],
    );
    for (const node of lab.clusters.flatMap((c) => c.nodes)) assert.ok(node.netnsPresent, node.netns);
    assert.equal(lab.processes.filter((p) => p.role === "kube-etcd" && p.running).length, 2);

    // Nodes of both clusters share the lab network, like kind's docker network.
    const [a, b] = [lab.clusters[0].nodes[1], lab.clusters[1].nodes[1]];
    const pinged = spawnSync("nsenter", [`--net=/run/netns/${a.netns}`, "ping", "-c1", "-W2", b.ip]);
    assert.equal(pinged.status, 0, "node to node across clusters");

    // Kubernetes' etcd, as kubeadm lays it out: its own CA, client certificates required.
    const pki = join(labDir(fixture.name), "clusters", "c1", "kubernetes", "pki", "etcd");
    const etcdTls = tlsFromFiles(bundlePaths(pki, "healthcheck-client"));
    const withCert = new Etcd3({
      hosts: [lab.clusters[0].etcdEndpoint],
      credentials: {
        rootCertificate: Buffer.from(etcdTls.ca),
        certChain: Buffer.from(etcdTls.cert),
        privateKey: Buffer.from(etcdTls.key),
      },
    });
    try {
      await withCert.put("probe").value("ok");
      assert.equal(await withCert.get("probe").string(), "ok");
    } finally {
      withCert.close();
    }
    const withoutCert = new Etcd3({
      hosts: [lab.clusters[0].etcdEndpoint],
      credentials: { rootCertificate: readFileSync(join(pki, "ca.crt")) },
      dialTimeout: 1_000,
    });
    try {
      await assert.rejects(withoutCert.get("probe").string());
    } finally {
      withoutCert.close();
    }

    // kubectl reaches each cluster through the context lab up merged into $KUBECONFIG.
    for (const cluster of ["c1", "c2"]) {
      const nodes = kubectl(fixture, cluster, ["get", "nodes", "-o", "json"]);
      assert.equal(nodes.status, 0, nodes.stderr);
      assert.deepEqual(
        JSON.parse(nodes.stdout)
          .items.map((n: { metadata: { name: string } }) => n.metadata.name)
          .sort(),
        [`${cluster}-control-plane`, `${cluster}-worker`],
      );
    }

    // Real Kubernetes, and each mesh component is its own ServiceAccount with the least RBAC.
    const version = JSON.parse(kubectl(fixture, "c1", ["version", "-o", "json"]).stdout);
    assert.equal(version.serverVersion.gitVersion, "v1.33.13");
    const can = (as: string, ...args: string[]) =>
      kubectl(fixture, "c1", ["auth", "can-i", ...args, `--as=${as}`]).stdout.trim();
    const agent = "system:serviceaccount:kube-system:clustermesh-agent";
    const apiserver = "system:serviceaccount:kube-system:clustermesh-apiserver";
    assert.equal(can(agent, "watch", "endpointslices.discovery.k8s.io", "-A"), "yes");
    assert.equal(can(agent, "create", "meshendpoints.clustermesh.io", "-n", "default"), "yes");
    assert.equal(can(agent, "list", "secrets", "-n", "kube-system"), "yes");
    assert.equal(can(agent, "list", "secrets", "-n", "default"), "no", "Secrets only in kube-system");
    assert.equal(can(agent, "create", "pods", "-n", "default"), "no");
    assert.equal(can(agent, "delete", "nodes"), "no");
    assert.equal(can(apiserver, "list", "services", "-A"), "yes");
    assert.equal(can(apiserver, "create", "meshnodes.clustermesh.io"), "no", "read only");
    assert.equal(can(apiserver, "get", "secrets", "-n", "kube-system"), "no");
    const nodeRoles = JSON.parse(
      kubectl(fixture, "c1", ["get", "node", "c1-control-plane", "-o", "json"]).stdout,
    );
    assert.equal(
      nodeRoles.metadata.labels["node-role.kubernetes.io/control-plane"],
      "",
      "marked as kubeadm does",
    );

    // The mesh as meshctl install made it: DaemonSet and Deployment pods, desired = ready.
    const workloads = JSON.parse(
      kubectl(fixture, "c1", ["-n", "kube-system", "get", "daemonsets,deployments", "-o", "json"]).stdout,
    ).items as {
      kind: string;
      metadata: { name: string };
      spec: { replicas?: number };
      status: Record<string, number>;
    }[];
    const agents = workloads.find((w) => w.kind === "DaemonSet" && w.metadata.name === "clustermesh-agent");
    assert.equal(agents?.status.desiredNumberScheduled, 2);
    assert.equal(agents?.status.numberReady, 2);
    const meshApiserver = workloads.find(
      (w) => w.kind === "Deployment" && w.metadata.name === "clustermesh-apiserver",
    );
    assert.equal(meshApiserver?.status.readyReplicas, meshApiserver?.spec.replicas);
    assert.equal(
      lab.processes.filter((p) => p.role === "agent" || p.role.startsWith("clustermesh")).length,
      0,
      "the lab starts no mesh process itself",
    );
    // A mesh pod sees its own volumes, not the lab's state.
    const inAgent = (...command: string[]) =>
      kubectl(fixture, "c1", ["-n", "kube-system", "exec", "ds/clustermesh-agent", "--", ...command]);
    assert.equal(inAgent("test", "-S", "/var/run/clustermesh/agent.sock").status, 0, "its hostPath volume");
    assert.equal(
      inAgent("cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace").stdout,
      "kube-system",
    );
    assert.notEqual(inAgent("ls", labDir(fixture.name)).status, 0, "the lab's state is not in the pod");

    const again = meshctl(labUpArgs(fixture), fixture.env);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists/);

    const text = meshctl(["lab", "status", "--name", fixture.name]);
    assert.match(text.stdout, /c1-control-plane\s+control-plane/);

    const refs = lab.processes.map((p) => {
      const state = JSON.parse(readFileSync(join(labDir(fixture.name), "state.json"), "utf8"));
      const r = state.resources.find((x: { pid?: number }) => x.pid === p.pid);
      return { pid: r.pid as number, startTime: r.startTime as string };
    });
    const down = meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    assert.equal(down.status, 0, down.stderr);
    await assertNothingLeft(fixture, refs);
    assert.ok(
      !readFileSync(fixture.kubeconfig, "utf8").includes(`${fixture.name}-c1`),
      "kubeconfig context left",
    );
  });

  it("down after a killed up removes what the up had created", async () => {
    const child = meshctlAsync(labUpArgs(fixture), fixture.env);
    const stateFile = join(labDir(fixture.name), "state.json");
    // Kill it once it has started etcd: namespaces, links, routes, mounts and a process exist by then.
    const refs = await waitFor(
      "lab up to start an etcd",
      () => {
        if (!existsSync(stateFile)) return undefined;
        try {
          const state = JSON.parse(readFileSync(stateFile, "utf8"));
          const procs = state.resources.filter((r: { kind: string }) => r.kind === "process");
          return procs.length > 0 ? procs : undefined;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 30_000, intervalMs: 10 },
    );
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    assert.ok(
      (await listNetns()).some((ns) => ns.startsWith(`${fixture.name}-`)),
      "the up had created namespaces",
    );

    const status = meshctl(["lab", "status", "--name", fixture.name]);
    assert.match(status.stdout, /INCOMPLETE/);
    const down = meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    assert.equal(down.status, 0, down.stderr);
    await assertNothingLeft(fixture, refs);
  });

  it("a kube-apiserver that will not start: up shows the end of its log and removes what it created", async (t) => {
    const real = await controlPlaneBinaries();
    const broken = join(fixture.dir, "kube-apiserver");
    writeFileSync(broken, '#!/bin/sh\necho "Error: unknown flag: --lab-test-$$" >&2\nexit 1\n', {
      mode: 0o755,
    });
    // in-process: the lab's kubeconfig record must point at the test's file, never the user's
    const userKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = fixture.kubeconfig;
    t.after(() => {
      if (userKubeconfig === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = userKubeconfig;
    });
    await assert.rejects(
      labUp({
        name: fixture.name,
        configFiles: fixture.configFiles,
        meshFile: fixture.meshFile,
        binaries: { controlPlane: { ...real, kubeApiserver: broken }, coredns: await corednsBinary() },
      }),
      (error: Error) => {
        assert.match(
          error.message,
          /kube-apiserver \(PID \d+\) exited; last lines of \S+kube-apiserver\.log/,
        );
        assert.match(error.message, /Error: unknown flag: --lab-test-\d+/);
        return true;
      },
    );
    assert.equal(LabJournal.open(fixture.name), undefined, "no lab record left");
    await assertNothingLeft(fixture);
  });

  it("rejects bad input with one line naming the file and field, creating nothing", async () => {
    const bad = (name: string, body: string) => {
      const file = join(fixture.dir, name);
      writeFileSync(file, `kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n${body}`);
      return file;
    };
    const [c1, c2] = fixture.configFiles;
    const cases: { args: string[]; error: RegExp; env?: NodeJS.ProcessEnv }[] = [
      {
        args: ["--config", bad("role.yaml", "name: r\nnodes:\n- role: control-plane\n- role: master\n")],
        error: /role.yaml: nodes\[1\].role: unknown role "master"/,
      },
      {
        args: ["--config", bad("noname.yaml", "nodes:\n- role: control-plane\n")],
        error: /noname.yaml: name: is required/,
      },
      {
        args: [
          "--config",
          c1,
          "--config",
          c2,
          "--config",
          bad("overlap.yaml", `name: o\nnetworking:\n  podSubnet: ${fixture.prefixes[1]}\n`),
        ],
        error: /overlap.yaml: networking.podSubnet: .* overlaps/,
      },
      {
        args: [
          "--config",
          c1,
          "--config",
          c2,
          "--config",
          bad(
            "hostroute.yaml",
            "name: h\nnetworking:\n  podSubnet: 127.0.0.0/16\n  serviceSubnet: 10.99.0.0/16\n",
          ),
        ],
        error: /hostroute.yaml: networking.podSubnet: 127.0.0.0\/16 overlaps the host route/,
      },
      { args: ["--config", c1, "--config", c1], error: /c1.yaml: name: cluster name "c1" is already used/ },
      {
        // The fixture's mesh file names c1 and c2: without c2's config, its entry would be ignored.
        args: ["--config", c1],
        error:
          /mesh.yaml: clusters.c2: no --config has a cluster named "c2" \(the configs name c1 \(.*c1.yaml\)\)/,
      },
      {
        args: ["--config", c1, "--config", c2],
        env: { ...fixture.env, MESH_KERNEL_CONFIG: bad("kconfig", "CONFIG_NET_NS=y\n") },
        error: /kernel feature missing: VXLAN devices/,
      },
    ];
    for (const { args, error, env } of cases) {
      const result = meshctl(
        ["lab", "up", "--name", fixture.name, "--mesh", fixture.meshFile, ...args],
        env ?? fixture.env,
      );
      assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, error);
      assert.doesNotMatch(result.stderr, /Creating lab/, "validated before saying it creates anything");
      await assertNothingLeft(fixture);
    }
    const asNobody = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        process.execPath,
        "dist/cli/main.js",
        ...labUpArgs(fixture),
      ],
      {
        encoding: "utf8",
      },
    );
    assert.equal(asNobody.status, 2, asNobody.stderr);
    assert.match(asNobody.stderr, /must run as root/);
    await assertNothingLeft(fixture);
    assert.ok(readdirSync(fixture.dir).length > 0);
  });
});
