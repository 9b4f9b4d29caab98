import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { ApiPodDirectory } from "./pod-directory.js";

/** A kubeconfig whose API server refuses every connection: any API call fails. */
function unreachableApi(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "http://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

const cached: V1Pod = {
  metadata: { name: "web", namespace: "demo", uid: "uid-1", labels: { app: "web" } },
  spec: {
    serviceAccountName: "sa",
    containers: [{ name: "c", ports: [{ name: "http", containerPort: 8080 }] }],
  },
};

describe("pod lookups for CNI ADD", () => {
  const directory = new ApiPodDirectory(
    unreachableApi(),
    (ns) => (ns === "demo" ? {} : undefined),
    (ns, name) => (ns === "demo" && name === "web" ? cached : undefined),
  );

  it("answers from the watch cache when it holds the pod with that uid (no API call)", async () => {
    const pod = await directory.getPod("demo", "web", "uid-1");
    assert.deepEqual(pod, {
      uid: "uid-1",
      namespace: "demo",
      name: "web",
      labels: { app: "web" },
      namespaceLabels: {},
      serviceAccount: "sa",
      namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
      terminating: false,
    });
  });

  it("asks the API when the cache lacks the pod or holds another pod of that name", async () => {
    await assert.rejects(directory.getPod("demo", "web", "uid-2"));
    await assert.rejects(directory.getPod("demo", "other"));
  });
});
