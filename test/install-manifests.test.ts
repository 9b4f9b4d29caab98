/**
 * The install manifests rendered with the kind quickstart's settings (README: cluster c1, id 1,
 * kind's API server at c1-control-plane:6443, no kube-proxy), held against what the agent,
 * the clustermesh-apiserver and the CNI plugin need on a node.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Container, V1DaemonSet, V1Deployment, V1Service } from "@kubernetes/client-node";
import { Command } from "commander";
import { parseAgentFlags } from "../agent/config.js";
import { addHubbleRelayOptions, type HubbleRelayFlags } from "../clustermesh-apiserver/hubble-relay.js";
import { MESH_CRDS } from "../lib/api/crds.js";
import { HubbleObjects } from "../lib/api/hubble.js";
import { POLICY_CRDS } from "../lib/api/policy-crds.js";
import { MESH_ACCESS, rbacObjects } from "../lib/api/rbac.js";
import { MeshObjects } from "../lib/clustermesh/resources.js";
import { AGENT_TERMINATION_GRACE_SECONDS, agentArgs, cniConflist } from "../lib/install/agent-daemonset.js";
import { clusterConfigMap, installManifests } from "../lib/install/manifests.js";
import { AGENT_HEALTH_PORT, APISERVER_HEALTH_PORT, NodePaths } from "../lib/install/names.js";
import { checkInstallSettings } from "../lib/install/settings.js";

const KIND = checkInstallSettings({
  clusterName: "c1",
  clusterId: 1,
  k8sServiceHost: "c1-control-plane",
  k8sServicePort: 6443,
  image: "docker.io/clustermesh/clustermesh:0.1.0",
});

const objects = installManifests(KIND);
const find = <T>(kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `${kind}/${name} rendered`);
  return found as T;
};
const agentDs = find<V1DaemonSet>("DaemonSet", "clustermesh-agent");
const podSpec = agentDs.spec?.template.spec;
const agent = podSpec?.containers.find((c) => c.name === "agent") as V1Container;

describe("install manifests (kind quickstart settings)", () => {
  it("carry the CRDs and exactly lib/api/rbac.ts's RBAC, before the workloads", () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    const crds = names.filter((n) => n.startsWith("CustomResourceDefinition/"));
    assert.deepEqual(
      crds,
      [...MESH_CRDS, ...POLICY_CRDS].map((crd) => `CustomResourceDefinition/${crd.metadata?.name}`),
    );
    assert.equal(crds.length, 5);
    for (const access of [MESH_ACCESS.agent, MESH_ACCESS.clustermeshApiserver])
      for (const rbac of rbacObjects(access))
        assert.deepEqual(find(rbac.kind as string, rbac.metadata?.name as string), rbac);
    const last = names.slice(-2);
    assert.deepEqual(last, ["DaemonSet/clustermesh-agent", "Deployment/clustermesh-apiserver"]);
  });

  it("agent pod: host network, privileged, its ServiceAccount, every node, graceful stop", () => {
    assert.equal(podSpec?.hostNetwork, true);
    assert.equal(podSpec?.dnsPolicy, "ClusterFirstWithHostNet");
    assert.equal(podSpec?.serviceAccountName, MESH_ACCESS.agent.name);
    assert.equal(agent.securityContext?.privileged, true);
    assert.deepEqual(podSpec?.tolerations, [{ operator: "Exists" }]);
    assert.equal(podSpec?.terminationGracePeriodSeconds, AGENT_TERMINATION_GRACE_SECONDS);
    assert.ok(AGENT_TERMINATION_GRACE_SECONDS >= 5, "time for the agent's stop (agent/main.ts)");
  });

  it("agent mounts the host's bpffs (Bidirectional), cgroup2, /proc and the CNI socket directory", () => {
    const volumes = new Map(podSpec?.volumes?.map((v) => [v.name, v.hostPath?.path]));
    const mounts = new Map(agent.volumeMounts?.map((m) => [m.mountPath, m]));
    const bpf = mounts.get(NodePaths.bpffs);
    assert.equal(volumes.get(bpf?.name ?? ""), "/sys/fs/bpf");
    assert.equal(bpf?.mountPropagation, "Bidirectional");
    const args = parseAgentFlags(agent.args?.map((a) => a.replace("$(NODE_NAME)", "n1")) ?? []);
    assert.equal(volumes.get(mounts.get(args.cgroupRoot)?.name ?? ""), "/sys/fs/cgroup");
    assert.ok(args.bpffsRoot.startsWith(`${NodePaths.bpffs}/`));
    assert.equal(volumes.get(mounts.get("/hostproc")?.name ?? ""), "/proc");
    // the socket lives in a host directory, where the CNI plugin (run by the runtime) finds it
    assert.equal(volumes.get(mounts.get(NodePaths.runDir)?.name ?? ""), NodePaths.runDir);
    assert.equal(args.socket, JSON.parse(cniConflist()).plugins[0].agentSocket);
  });

  it("agent flags parse with the agent's own parser; node name from the downward API", () => {
    const args = parseAgentFlags(agentArgs(KIND).map((a) => a.replace("$(NODE_NAME)", "c1-worker")));
    assert.equal(args.nodeName, "c1-worker");
    assert.equal(args.clusterName, "c1");
    assert.equal(args.clusterId, 1);
    assert.equal(args.encryption, "none");
    assert.deepEqual(args.metricsAddress, { host: "0.0.0.0", port: AGENT_HEALTH_PORT });
    assert.deepEqual(agent.env?.find((e) => e.name === "NODE_NAME")?.valueFrom, {
      fieldRef: { fieldPath: "spec.nodeName" },
    });
  });

  it("agent and clustermesh-apiserver pods carry Prometheus' scrape annotations for their /metrics port", () => {
    assert.deepEqual(agentDs.spec?.template.metadata?.annotations, {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(AGENT_HEALTH_PORT),
    });
    const deploy = find<V1Deployment>("Deployment", "clustermesh-apiserver");
    assert.deepEqual(deploy.spec?.template.metadata?.annotations, {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(APISERVER_HEALTH_PORT),
    });
  });

  it("readiness is the agent's /healthz on the node's loopback", () => {
    assert.deepEqual(agent.readinessProbe?.httpGet, {
      host: "127.0.0.1",
      path: "/healthz",
      port: AGENT_HEALTH_PORT,
    });
    assert.ok(agent.livenessProbe && agent.startupProbe);
  });

  it("an init container installs the plugin binary and its conflist on the node", () => {
    const init = podSpec?.initContainers?.find((c) => c.name === "install-cni") as V1Container;
    const script = init.command?.join(" ") ?? "";
    assert.match(
      script,
      /cp \/opt\/clustermesh\/cni\/build\/clustermesh-cni \/host\/opt\/cni\/bin\/\.clustermesh\.new/,
    );
    assert.match(script, /mv .* \/host\/etc\/cni\/net\.d\/05-clustermesh\.conflist/);
    const conflist = JSON.parse(init.env?.find((e) => e.name === "CNI_CONFLIST")?.value ?? "");
    assert.equal(conflist.plugins[0].type, NodePaths.cniPluginName);
    const hostPaths = new Map(podSpec?.volumes?.map((v) => [v.name, v.hostPath?.path]));
    assert.deepEqual(
      init.volumeMounts?.map((m) => [m.mountPath, hostPaths.get(m.name)]),
      [
        ["/host/opt/cni/bin", "/opt/cni/bin"],
        ["/host/etc/cni/net.d", "/etc/cni/net.d"],
      ],
    );
    assert.ok(
      podSpec?.initContainers?.some((c) => c.name === "mount-bpf-fs" && c.securityContext?.privileged),
    );
  });

  it("the kubeconfig the pods read points at the kind control plane with the pod's own token", () => {
    const cm = find<{ data: Record<string, string> }>("ConfigMap", "clustermesh-kubeconfig");
    const kubeconfig = JSON.parse(cm.data.kubeconfig);
    assert.equal(kubeconfig.clusters[0].cluster.server, "https://c1-control-plane:6443");
    assert.equal(
      kubeconfig.users[0].user["token-file"],
      "/var/run/secrets/kubernetes.io/serviceaccount/token",
    );
  });

  it("clustermesh-apiserver: etcd and the apiserver in one pod, the certificate Secrets clustermesh enable issues", () => {
    const deploy = find<V1Deployment>("Deployment", "clustermesh-apiserver");
    const spec = deploy.spec?.template.spec;
    assert.deepEqual(
      spec?.containers.map((c) => c.name),
      ["etcd", "apiserver"],
    );
    assert.equal(spec?.serviceAccountName, MESH_ACCESS.clustermeshApiserver.name);
    assert.deepEqual(
      spec?.volumes?.filter((v) => v.secret).map((v) => v.secret?.secretName),
      [MeshObjects.serverCert, MeshObjects.adminCert, HubbleObjects.relayCert],
    );
    assert.ok(spec?.containers[1].args?.includes("--cluster-id=1"));
    assert.equal(spec?.containers[1].readinessProbe?.httpGet?.path, "/readyz");
  });

  it("the Service is enable's (name, port etcd 2379, NodePort 32379) and selects the Deployment's pod", () => {
    const service = find<V1Service>("Service", MeshObjects.service);
    assert.equal(service.spec?.type, "NodePort");
    assert.deepEqual(service.spec?.ports, [
      { name: "etcd", port: 2379, targetPort: 2379, protocol: "TCP", nodePort: 32379 },
    ]);
    const deploy = find<V1Deployment>("Deployment", "clustermesh-apiserver");
    for (const [key, value] of Object.entries(service.spec?.selector ?? {}))
      assert.equal(deploy.spec?.template.metadata?.labels?.[key], value);
    const clusterIp = installManifests({ ...KIND, apiserverServiceType: "ClusterIP" }).find(
      (o) => o.kind === "Service",
    ) as V1Service;
    assert.equal(clusterIp.spec?.ports?.[0].nodePort, undefined);
  });

  it("Hubble relay (default on): agents serve 4244 with mTLS, the apiserver pod relays on 4245 and 4246", () => {
    const flags = parseAgentFlags(agentArgs(KIND).map((arg) => arg.replace("$(NODE_NAME)", "n1")));
    assert.equal(flags.hubble.listenAddress, ":4244");
    assert.ok(flags.hubble.tls, "mutual TLS on the agent's TCP listener");
    assert.deepEqual(
      podSpec?.volumes?.filter((v) => v.secret).map((v) => v.secret?.secretName),
      [HubbleObjects.agentCert],
    );
    const apiserver = find<V1Deployment>("Deployment", "clustermesh-apiserver").spec?.template.spec
      ?.containers[1] as V1Container;
    const relay = addHubbleRelayOptions(
      new Command().allowUnknownOption().allowExcessArguments().exitOverride(),
    )
      .parse(apiserver.args ?? [], { from: "user" })
      .opts() as HubbleRelayFlags;
    assert.equal(relay.hubbleRelayAddress, ":4245");
    assert.equal(relay.hubbleRelayMeshAddress, ":4246");
    assert.equal(relay.hubbleRelayDiscoverNodes, true);
    assert.equal(relay.hubbleRelayPeersConfigmap, HubbleObjects.relayPeers);
    assert.deepEqual(
      apiserver.ports?.map((p) => p.containerPort),
      [APISERVER_HEALTH_PORT, 4245, 4246],
    );
    const local = find<V1Service>("Service", HubbleObjects.relayService);
    assert.deepEqual(
      [local.spec?.type, local.spec?.ports?.[0].port, local.spec?.ports?.[0].targetPort],
      ["ClusterIP", 80, 4245],
    );
    const mesh = find<V1Service>("Service", HubbleObjects.relayMeshService);
    assert.deepEqual(
      [mesh.spec?.type, mesh.spec?.ports?.[0].port, mesh.spec?.ports?.[0].nodePort],
      ["NodePort", 4246, 32446],
    );
  });

  it("--no-hubble-relay: no relay, no Hubble TCP listener, no relay Services", () => {
    const off = installManifests({ ...KIND, hubbleRelay: false });
    assert.equal(off.filter((o) => o.metadata?.name?.startsWith("hubble-relay")).length, 0);
    const ds = off.find((o) => o.kind === "DaemonSet") as V1DaemonSet;
    const args = ds.spec?.template.spec?.containers[0].args ?? [];
    assert.equal(args.filter((a) => a.startsWith("--hubble-")).length, 0);
    const deploy = off.find((o) => o.kind === "Deployment") as V1Deployment;
    assert.equal(
      deploy.spec?.template.spec?.containers[1].args?.filter((a) => a.startsWith("--hubble-relay")).length,
      0,
    );
  });

  it("KVStoreMesh (default on): the apiserver caches the remotes of the clustermesh-kvstoremesh Secret; off: no such flag", () => {
    const apiserverArgs = (settings: typeof KIND) =>
      (installManifests(settings).find((o) => o.kind === "Deployment") as V1Deployment).spec?.template.spec
        ?.containers[1].args ?? [];
    assert.equal(KIND.kvstoremesh, true);
    assert.deepEqual(
      apiserverArgs(KIND).filter((a) => /kvstoremesh|clustermesh-config/.test(a)),
      ["--kvstoremesh=true", `--clustermesh-config-secret=${MeshObjects.kvstoremesh}`],
    );
    assert.equal(
      apiserverArgs({ ...KIND, kvstoremesh: false }).filter((a) => /kvstoremesh/.test(a)).length,
      0,
    );
    // recorded where `clustermesh connect` reads it
    assert.equal(clusterConfigMap(KIND).data.kvstoremesh, "true");
    assert.equal(clusterConfigMap({ ...KIND, kvstoremesh: false }).data.kvstoremesh, "false");
  });
});

describe("install settings", () => {
  const base = { clusterName: "c1", clusterId: 1, k8sServiceHost: "c1-control-plane" };
  it("default to no encryption, a NodePort on 32379 and this version's image", () => {
    const s = checkInstallSettings(base);
    assert.equal(s.encryption, "none");
    assert.equal(s.apiserverServiceType, "NodePort");
    assert.equal(s.nodePort, 32379);
    assert.match(s.image, /^docker\.io\/clustermesh\/clustermesh:\d+\.\d+\.\d+/);
    assert.equal(s.k8sServicePort, 6443);
  });
  it("name the field of every bad value", () => {
    for (const [bad, field] of [
      [{ clusterName: undefined }, "--cluster-name"],
      [{ clusterName: "-x" }, "--cluster-name"],
      [{ clusterId: 0 }, "--cluster-id"],
      [{ clusterId: 256 }, "--cluster-id"],
      [{ encryption: "aes" }, "--encryption"],
      [{ k8sServiceHost: "" }, "--k8s-service-host"],
      [{ k8sServiceHost: "a b" }, "--k8s-service-host"],
      [{ k8sServicePort: 70000 }, "--k8s-service-port"],
      [{ image: "x y" }, "--image"],
      [{ apiserverServiceType: "External" }, "--apiserver-service-type"],
      [{ nodePort: 2379 }, "--node-port"],
    ] as const) {
      assert.throws(
        () => checkInstallSettings({ ...base, ...(bad as object) }),
        (error: Error) => error.message.startsWith(field),
        JSON.stringify(bad),
      );
    }
  });
});
