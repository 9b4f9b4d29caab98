/**
 * `meshctl install|uninstall|status|version` against the real kube-apiserver v1.33.13 (the lab's
 * build, lab/kubernetes) in a scratch network namespace, set up and torn down as
 * lab/kubernetes/control-plane.root.test.ts does. No kubelet runs, so no pod starts: this proves
 * what the API server accepts and keeps (schemas, RBAC, idempotence, preflight, uninstall), not
 * the pods (the lab integration, issue 14 item 5, does that).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { startHubbleRelay } from "../clustermesh-apiserver/hubble-relay.js";
import type { KubernetesControlPlane } from "../lab/kubernetes/control-plane.js";
import { IPSEC_KEYS_SECRET } from "../lib/api/encryption.js";
import { HubbleObjects } from "../lib/api/hubble.js";
import { MESH_ACCESS, serviceAccountUser } from "../lib/api/rbac.js";
import { ENABLE_OBJECTS } from "../lib/clustermesh/disable.js";
import { MeshObjects } from "../lib/clustermesh/resources.js";
import { HubbleClient } from "../lib/hubble/client.js";
import { ensureIpsecKeys } from "../lib/install/ipsec-keys.js";
import { installManifests } from "../lib/install/manifests.js";
import { checkInstallSettings } from "../lib/install/settings.js";
import { objectName } from "../lib/k8s/apply.js";
import { createLogger } from "../lib/log.js";
import { isRunning, waitFor } from "../lib/process.js";
import { TestKubernetes } from "../testing/kubernetes.js";

const MESHCTL = join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");
const BUILD_AND_START_TIMEOUT_MS = 90 * 60_000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: string[], timeout = 180_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("meshctl install against a real kube-apiserver (root; builds the binaries on first use)", () => {
  const kube = new TestKubernetes();
  const dir = kube.dir;
  const cluster = "c1";
  let nodeIp = "";
  let cp: KubernetesControlPlane;
  let context = "";

  const kubectl = (...args: string[]) =>
    run(["kubectl", "--kubeconfig", cp.kubeconfigs.admin, ...args], 60_000);
  const ok = async (...args: string[]) => {
    const result = await kubectl(...args);
    assert.equal(result.code, 0, `kubectl ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  const meshctl = (...args: string[]) =>
    run([process.execPath, MESHCTL, ...args, "--kubeconfig", cp.kubeconfigs.admin, "--context", context]);
  const installFlags = () => [
    "install",
    "--cluster-name",
    cluster,
    "--cluster-id",
    "7",
    "--k8s-service-host",
    nodeIp,
  ];
  const settings = () => checkInstallSettings({ clusterName: cluster, clusterId: 7, k8sServiceHost: nodeIp });
  /** `kind/namespace/name` → resourceVersion of every object install makes (and what is missing). */
  const installedState = async () => {
    const names = [
      ...installManifests(settings()).map((o) => ({
        kind: o.kind as string,
        name: o.metadata?.name as string,
        namespace: o.metadata?.namespace,
      })),
      // the remotes Secrets (agents', KVStoreMesh's) are connect's, not install's
      ...ENABLE_OBJECTS.filter(
        (o) => o.kind === "Secret" && o.name !== MeshObjects.remotes && o.name !== MeshObjects.kvstoremesh,
      ).map((o) => ({
        ...o,
        namespace: "kube-system",
      })),
      { kind: "Secret", name: MeshObjects.ca, namespace: "kube-system" },
      // the Hubble certificates install issues (relay on by default)
      ...[HubbleObjects.agentCert, HubbleObjects.relayCert].map((name) => ({
        kind: "Secret",
        name,
        namespace: "kube-system",
      })),
    ];
    const state: Record<string, string> = {};
    for (const o of names) {
      const got = await kubectl(
        "get",
        o.kind.toLowerCase() === "customresourcedefinition" ? "crd" : o.kind.toLowerCase(),
        o.name,
        ...(o.namespace ? ["-n", o.namespace] : []),
        "-o",
        "jsonpath={.metadata.resourceVersion}",
      );
      state[`${o.kind}/${o.namespace ?? ""}/${o.name}`] = got.code === 0 ? got.stdout : "missing";
    }
    return state;
  };

  before(
    async () => {
      await kube.start();
      cp = kube.cp as KubernetesControlPlane;
      nodeIp = kube.ip;
      context = kube.kubeConfig().getCurrentContext();
    },
    { timeout: BUILD_AND_START_TIMEOUT_MS },
  );

  after(async () => {
    await kube.stop();
    for (const record of kube.records) {
      if (record.kind === "process")
        assert.ok(!isRunning(record), `${record.role} (PID ${record.pid}) left running`);
    }
  });

  it("--dry-run prints every object as YAML the API server accepts, and reaches no cluster", async () => {
    const dry = await run([
      process.execPath,
      MESHCTL,
      ...installFlags(),
      "--context",
      "no-such-context",
      "--dry-run",
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    const docs = parseAllDocuments(dry.stdout).map((d) => d.toJS());
    assert.deepEqual(
      docs.map((o) => objectName(o)),
      installManifests(settings()).map((o) => objectName(o)),
    );
    const file = join(dir, "dry-run.yaml");
    writeFileSync(file, dry.stdout);
    // the server's own validation (schemas, RBAC escalation checks) without persisting anything
    await ok("apply", "--server-side", "--dry-run=server", "-f", file);
  });

  it("refuses bad settings with one line naming the flag, before reaching the cluster", async () => {
    for (const [flags, field] of [
      [["--cluster-id", "0"], "--cluster-id"],
      [["--cluster-id", "256"], "--cluster-id"],
      [["--cluster-name", "Bad_Name"], "--cluster-name"],
      [["--k8s-service-host", "not a host"], "--k8s-service-host"],
      [["--image", "has spaces:1"], "--image"],
      [["--node-port", "80"], "--node-port"],
    ] as const) {
      const result = await meshctl(...installFlags(), ...flags);
      assert.equal(result.code, 2, `${flags.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^Error: ${field}`), flags.join(" "));
    }
    assert.equal((await installedState())[`ConfigMap/kube-system/${MeshObjects.config}`], "missing");
  });

  it("refuses while a kube-proxy DaemonSet is in charge and writes nothing; --force installs", async () => {
    const proxy = join(dir, "kube-proxy.json");
    writeFileSync(
      proxy,
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "DaemonSet",
        metadata: { name: "kube-proxy", namespace: "kube-system" },
        spec: {
          selector: { matchLabels: { k8s: "kube-proxy" } },
          template: {
            metadata: { labels: { k8s: "kube-proxy" } },
            spec: { containers: [{ name: "kube-proxy", image: "registry.k8s.io/kube-proxy:v1.33.13" }] },
          },
        },
      }),
    );
    await ok("create", "-f", proxy);
    const refused = await meshctl(...installFlags());
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /DaemonSet kube-system\/kube-proxy: kube-proxy .*--force/);
    const untouched = await installedState();
    assert.deepEqual(
      Object.entries(untouched).filter(([, rv]) => rv !== "missing"),
      [],
      "nothing written by a refused install",
    );

    const forced = await meshctl(...installFlags(), "--force");
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stderr, /--force: installing although DaemonSet kube-system\/kube-proxy/);
    const lines = forced.stderr.trimEnd().split("\n");
    assert.ok(
      lines.every((line) => line.startsWith(" ✓ ")),
      forced.stderr,
    );
    const state = await installedState();
    assert.deepEqual(
      Object.entries(state).filter(([, rv]) => rv === "missing"),
      [],
      "every object install makes exists",
    );
    await ok("-n", "kube-system", "delete", "daemonset", "kube-proxy");
  });

  it("the agent's ServiceAccount may do exactly what lib/api/rbac.ts grants", async () => {
    const role = JSON.parse(await ok("get", "clusterrole", MESH_ACCESS.agent.name, "-o", "json"));
    assert.deepEqual(role.rules, MESH_ACCESS.agent.clusterRules);
    const nsRole = JSON.parse(
      await ok("-n", "kube-system", "get", "role", MESH_ACCESS.agent.name, "-o", "json"),
    );
    assert.deepEqual(nsRole.rules, MESH_ACCESS.agent.namespaceRules);
    const canI = async (who: string, ...args: string[]) =>
      (await kubectl("auth", "can-i", "--as", who, ...args)).stdout.trim();
    const agent = serviceAccountUser(MESH_ACCESS.agent);
    for (const allowed of [
      ["list", "pods", "-A"],
      ["watch", "endpointslices.discovery.k8s.io", "-A"],
      ["patch", "nodes"],
      ["create", "meshendpoints.clustermesh.io", "-n", "default"],
      ["get", "secrets", "-n", "kube-system"],
      ["watch", "networkpolicies.networking.k8s.io", "-A"],
    ])
      assert.equal(await canI(agent, ...allowed), "yes", allowed.join(" "));
    for (const denied of [
      ["get", "secrets", "-n", "default"],
      ["create", "pods", "-n", "default"],
      ["delete", "nodes"],
      ["update", "configmaps", "-n", "kube-system"],
      ["delete", "customresourcedefinitions"],
      ["create", "networkpolicies.networking.k8s.io", "-n", "default"],
    ])
      assert.equal(await canI(agent, ...denied), "no", denied.join(" "));
    const apiserver = serviceAccountUser(MESH_ACCESS.clustermeshApiserver);
    assert.equal(await canI(apiserver, "list", "meshnodes.clustermesh.io"), "yes");
    assert.equal(await canI(apiserver, "create", "meshnodes.clustermesh.io"), "no");
    assert.equal(await canI(apiserver, "get", "secrets", "-n", "kube-system"), "no");
    // the Hubble relay: Nodes (its agents) and the one ConfigMap of other clusters' relays
    assert.equal(await canI(apiserver, "watch", "nodes"), "yes");
    for (const verb of ["get", "list", "watch"])
      assert.equal(
        await canI(apiserver, verb, `configmaps/${HubbleObjects.relayPeers}`, "-n", "kube-system"),
        "yes",
        verb,
      );
    assert.equal(await canI(apiserver, "get", "configmaps/clustermesh-config", "-n", "kube-system"), "no");
    assert.equal(
      await canI(apiserver, "update", `configmaps/${HubbleObjects.relayPeers}`, "-n", "kube-system"),
      "no",
    );
  });

  it("the relay follows the cluster's Nodes: a new Node is merged, a deleted one dropped, no restart", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigs.admin);
    // nothing listens on the agent port of 127.0.0.1 here: the ghost node is merged as unavailable
    const running = await startHubbleRelay(
      {
        hubbleRelayAddress: "127.0.0.1:0",
        hubbleRelayPeer: [],
        hubbleRelayDiscoverNodes: true,
        hubbleRelayAgentPort: 1,
      },
      { clusterName: cluster, kubeConfig: kc, log: createLogger({ name: "relay-test", level: "silent" }) },
    );
    assert.ok(running);
    const client = HubbleClient.connect(`127.0.0.1:${running.port}`);
    const ghost = `${cluster}/relay-ghost`;
    const names = async () => (await client.nodes(10_000)).map((node) => `${node.name} ${node.state}`);
    try {
      const manifest = join(dir, "ghost-node.json");
      writeFileSync(
        manifest,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Node",
          metadata: { name: "relay-ghost" },
          status: { addresses: [{ type: "InternalIP", address: "127.0.0.1" }] },
        }),
      );
      await ok("create", "-f", manifest);
      await waitFor(
        "the relay to merge the new Node",
        async () => (await names()).includes(`${ghost} NODE_UNAVAILABLE`),
        {
          timeoutMs: 20_000,
          intervalMs: 200,
        },
      );
      assert.deepEqual((await client.serverStatus()).unavailable_nodes?.includes(ghost), true);
      await ok("delete", "node", "relay-ghost");
      await waitFor(
        "the relay to drop the deleted Node",
        async () => !(await names()).some((name) => name.startsWith(`${ghost} `)),
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    } finally {
      client.close();
      await running.close();
      await kubectl("delete", "node", "relay-ghost", "--ignore-not-found");
    }
  });

  it("a re-run changes nothing (every resourceVersion stays)", async () => {
    const before = await installedState();
    const again = await meshctl(...installFlags());
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await installedState(), before);
  });

  it("the policy CRDs take Cilium's L3/L4 policies, keep unsupported fields for the agent, refuse what the schema can", async () => {
    const policy = (name: string, spec: unknown) =>
      JSON.stringify({
        apiVersion: "cilium.io/v2",
        kind: "CiliumNetworkPolicy",
        metadata: { name, namespace: "default" },
        spec,
      });
    const write = (name: string, body: string) => {
      const file = join(dir, `${name}.json`);
      writeFileSync(file, body);
      return file;
    };
    const good = write(
      "cnp-good",
      policy("good", {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: "client", "io.cilium.k8s.policy.cluster": "c2" } }],
            fromEntities: ["mesh", "host"],
            fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }],
            toPorts: [
              {
                ports: [{ port: "8000", endPort: 8080, protocol: "TCP" }, { port: "http" }],
                rules: { http: [{ method: "GET" }] },
              },
            ],
          },
        ],
        egressDeny: [{ toCIDR: ["192.0.2.0/24"] }],
      }),
    );
    await ok("apply", "--server-side", "--dry-run=server", "-f", good);
    await ok("apply", "--server-side", "-f", good);
    const stored = JSON.parse(await ok("get", "cnp", "good", "-n", "default", "-o", "json"));
    assert.equal(stored.spec.ingress[0].toPorts[0].ports[1].port, "http");
    assert.equal(stored.spec.egressDeny[0].toCIDR[0], "192.0.2.0/24");
    assert.ok(
      "rules" in stored.spec.ingress[0].toPorts[0],
      "the L7 field survives pruning, for the agent to refuse",
    );
    await ok("delete", "cnp", "good", "-n", "default");
    const clusterwide = write(
      "ccnp-good",
      JSON.stringify({
        apiVersion: "cilium.io/v2",
        kind: "CiliumClusterwideNetworkPolicy",
        metadata: { name: "cw" },
        specs: [{ endpointSelector: {}, egress: [{ toEntities: ["cluster"] }] }],
      }),
    );
    await ok("apply", "--server-side", "--dry-run=server", "-f", clusterwide);
    const refused: Array<[string, unknown, RegExp]> = [
      ["entity", { endpointSelector: {}, ingress: [{ fromEntities: ["everything"] }] }, /fromEntities\[0\]/],
      [
        "port",
        { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: "70000" }] }] }] },
        /ports\[0\]\.port/,
      ],
      [
        "endport",
        { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: "80", endPort: 70000 }] }] }] },
        /endPort/,
      ],
      [
        "protocol",
        { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: "80", protocol: "HTTP" }] }] }] },
        /protocol/,
      ],
      ["operator", { endpointSelector: { matchExpressions: [{ key: "a", operator: "Like" }] } }, /operator/],
      ["cidr", { endpointSelector: {}, egress: [{ toCIDR: ["banana"] }] }, /toCIDR\[0\]/],
    ];
    for (const [name, spec, field] of refused) {
      const result = await kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        write(`cnp-${name}`, policy(name, spec)),
      );
      assert.notEqual(result.code, 0, `${name} accepted`);
      assert.match(result.stderr, field, name);
    }
  });

  it("policy trace reads the policies, pods and namespaces and names the deciding rule", async () => {
    const file = join(dir, "trace.json");
    const pod = (name: string, labels: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "pm-demo", labels },
      spec: {
        automountServiceAccountToken: false,
        containers: [
          { name: "c", image: "registry.k8s.io/pause:3.10", ports: [{ name: "http", containerPort: 8080 }] },
        ],
      },
    });
    const objects = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "pm-demo", labels: { team: "a" } } },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: "pm-demo" } },
      pod("web", { app: "web" }),
      pod("client", { app: "client" }),
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "web", namespace: "pm-demo" },
        spec: {
          podSelector: { matchLabels: { app: "web" } },
          ingress: [
            { from: [{ namespaceSelector: { matchLabels: { team: "a" } } }], ports: [{ port: "http" }] },
          ],
        },
      },
      {
        apiVersion: "cilium.io/v2",
        kind: "CiliumNetworkPolicy",
        metadata: { name: "mesh", namespace: "pm-demo" },
        spec: {
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [{ fromEntities: ["mesh"], toPorts: [{ ports: [{ port: "9090" }] }] }],
        },
      },
    ];
    writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
    await ok("apply", "--server-side", "-f", file);
    try {
      const trace = async (...args: string[]) => {
        const result = await meshctl("policy", "trace", "-o", "json", ...args);
        assert.equal(result.code, 0, result.stderr);
        return JSON.parse(result.stdout);
      };
      const named = await trace("--from", "pm-demo/client", "--to", "pm-demo/web", "--dport", "8080/tcp");
      assert.equal(named.allowed, true);
      assert.equal(named.ingress.rule, "NetworkPolicy pm-demo/web ingress[0]");
      assert.equal(named.egress.verdict.reason, "not-enforced");
      const other = await trace("--from", "pm-demo/client", "--to", "pm-demo/web", "--dport", "80/tcp");
      assert.equal(other.allowed, false);
      assert.equal(other.ingress.verdict.reason, "default-deny");
      const remote = await trace(
        "--from",
        "app=client,io.kubernetes.pod.namespace=pm-demo,io.cilium.k8s.namespace.labels.team=a",
        "--from-cluster",
        "c9",
        "--to",
        "pm-demo/web",
        "--dport",
        "8080/tcp",
      );
      assert.equal(remote.allowed, false, "the namespace selector matches only the local cluster");
      const mesh = await trace(
        "--from",
        "app=client",
        "--from-cluster",
        "c9",
        "--to",
        "pm-demo/web",
        "--dport",
        "9090/tcp",
      );
      assert.equal(mesh.ingress.rule, "CiliumNetworkPolicy pm-demo/mesh ingress[0]");
      const text = await meshctl(
        "policy",
        "trace",
        "--from",
        "pm-demo/client",
        "--to",
        "pm-demo/web",
        "--dport",
        "80/tcp",
      );
      assert.match(text.stdout, /Ingress: +DENIED: policies select the pod for ingress and none allows this/);
      const missing = await meshctl("policy", "trace", "--from", "pm-demo/nope", "--to", "pm-demo/web");
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /--from: no pod pm-demo\/nope/);
    } finally {
      await ok("delete", "namespace", "pm-demo", "--wait=false");
    }
  });

  it("refuses another cluster name or id on an installed cluster", async () => {
    const other = await meshctl(...installFlags(), "--cluster-id", "8");
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, /--cluster-id: this cluster is already in the mesh as c1 \(id 7\)/);
  });

  it("status and version --context report the installed workloads as JSON and text", async () => {
    const status = await meshctl("status", "-o", "json");
    // no kubelet: nothing gets ready, so status exits 1 and says so
    assert.equal(status.code, 1, status.stderr);
    const report = JSON.parse(status.stdout);
    assert.equal(report.agent.present, true);
    assert.equal(report.agent.name, "clustermesh-agent");
    assert.equal(report.apiserver.present, true);
    assert.equal(report.apiserver.desired, 1);
    assert.equal(report.apiserver.ready, 0);
    const text = await meshctl("status");
    assert.match(text.stdout, /^DaemonSet clustermesh-agent: desired \d+, ready \d+/m);
    assert.match(text.stdout, /^Deployment clustermesh-apiserver: desired 1, ready 0, .*not ready/m);
    const version = await meshctl("version", "-o", "json");
    assert.equal(version.code, 0, version.stderr);
    const servers = JSON.parse(version.stdout).servers;
    assert.deepEqual(
      servers.map((s: { component: string; installed: boolean; image: string }) => [
        s.component,
        s.installed,
        s.image,
      ]),
      [
        ["clustermesh-agent", true, settings().image],
        ["clustermesh-apiserver", true, settings().image],
      ],
    );
  });

  it("install --wait fails at once, naming the image and the kind load command, when a pod cannot pull it", async () => {
    // No kubelet runs: a Node object with room for pods lets the DaemonSet controller and the
    // scheduler place an agent pod on it; the test then reports for that pod what a kubelet reports
    // when the image is not on the node.
    const node = `${cluster}-control-plane`;
    const nodeFile = join(dir, "node.json");
    writeFileSync(nodeFile, JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }));
    await ok("create", "-f", nodeFile);
    const room = { pods: "110", cpu: "4", memory: "8Gi" };
    await ok(
      "patch",
      "node",
      node,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { capacity: room, allocatable: room } }),
    );
    const began = Date.now();
    const waiting = meshctl(...installFlags(), "--wait", "--wait-duration", "10m");
    const pod = await waitFor(
      "the agent pod bound to the node",
      async () => {
        const pods = JSON.parse(
          await ok(
            "-n",
            "kube-system",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=clustermesh-agent",
            "-o",
            "json",
          ),
        ).items as { metadata: { name: string }; spec: { nodeName?: string } }[];
        return pods.find((p) => p.spec.nodeName === node)?.metadata.name;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const image = settings().image;
    await ok(
      "-n",
      "kube-system",
      "patch",
      "pod",
      pod,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          initContainerStatuses: [
            {
              name: "mount-bpf-fs",
              image,
              imageID: "",
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: "ErrImagePull", message: `pull access denied for ${image}` } },
            },
          ],
        },
      }),
    );
    const failed = await waiting;
    assert.equal(failed.code, 1, failed.stderr);
    // at once, not at the deadline: no retry pulls an image
    assert.ok(Date.now() - began < 5 * 60_000, `failed after ${Date.now() - began} ms, not at once`);
    const error = failed.stderr.split("\n").filter((line) => line.startsWith("Error:"));
    assert.equal(error.length, 1, failed.stderr);
    assert.match(
      error[0],
      new RegExp(
        `cannot pull ${image.replace(/[.]/g, "\\.")} \\(${pod} on ${node}: ErrImagePull\\); load it onto the nodes: kind load image-archive`,
      ),
    );
    // leave no pod bound to a node without a kubelet (it could never finish terminating)
    await ok("delete", "node", node);
    await ok("-n", "kube-system", "delete", "pod", pod, "--force", "--grace-period=0");
  });

  it("an IPsec install's key Secret is created once with a key in Cilium's format, then never replaced", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfigs.admin);
    const read = async () =>
      Buffer.from(
        (
          await ok(
            "-n",
            "kube-system",
            "get",
            "secret",
            IPSEC_KEYS_SECRET.name,
            "-o",
            "jsonpath={.data.keys}",
          )
        ).trim(),
        "base64",
      ).toString();
    assert.equal(await ensureIpsecKeys(kc), "created");
    const first = await read();
    assert.match(first, /^3\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$/);
    assert.equal(await ensureIpsecKeys(kc), "kept");
    assert.equal(await read(), first, "the mesh-wide key is never replaced");
  });

  it("uninstall removes what install made, says what it left; --delete-crds and a second uninstall", async () => {
    const removed = await meshctl("uninstall");
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /Left: Secret kube-system\/clustermesh-ca/);
    assert.match(removed.stderr, /Left: Secret kube-system\/clustermesh-ipsec-keys: the IPsec key/);
    assert.match(removed.stderr, /Left: CustomResourceDefinition\/meshnodes.clustermesh.io/);
    const state = await installedState();
    const remaining = Object.entries(state)
      .filter(([, rv]) => rv !== "missing")
      .map(([name]) => name)
      .sort();
    assert.deepEqual(remaining, [
      "CustomResourceDefinition//ciliumclusterwidenetworkpolicies.cilium.io",
      "CustomResourceDefinition//ciliumnetworkpolicies.cilium.io",
      "CustomResourceDefinition//meshendpoints.clustermesh.io",
      "CustomResourceDefinition//meshidentities.clustermesh.io",
      "CustomResourceDefinition//meshnodes.clustermesh.io",
      `Secret/kube-system/${MeshObjects.ca}`,
    ]);
    assert.equal(
      (await kubectl("-n", "kube-system", "get", "daemonset", "clustermesh-node-cleanup")).code,
      1,
    );

    const crds = await meshctl("uninstall", "--delete-crds");
    assert.equal(crds.code, 0, crds.stderr);
    assert.equal((await kubectl("get", "crd", "meshnodes.clustermesh.io")).code, 1);
    assert.equal((await kubectl("get", "crd", "ciliumnetworkpolicies.cilium.io")).code, 1);
    await ok("-n", "kube-system", "delete", "secret", MeshObjects.ca);
    const nothing = await meshctl("uninstall");
    assert.equal(nothing.code, 0, nothing.stderr);
    assert.match(nothing.stdout, /^Nothing to uninstall in /);
  });
});
