import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { ContainerConfigError, containerEnv, expandVariables, referencedNames } from "./container-env.js";

const pod: V1Pod = {
  metadata: { name: "p", namespace: "ns", uid: "u", labels: { app: "x" } },
  spec: { containers: [], nodeName: "n1", serviceAccountName: "sa" },
};
const facts = {
  nodeName: "n1",
  nodeIps: ["172.30.0.2"],
  podIps: ["10.1.0.5"],
  clusterName: "c1",
  imageEnv: { PATH: "/usr/bin" },
  kubernetesService: { host: "10.96.0.1", port: 443 },
};
const objects = (
  configMaps: Record<string, Record<string, string>>,
  secrets: Record<string, Record<string, string>> = {},
) => ({
  configMaps: new Map(
    Object.entries(configMaps).map(([k, v]) => [
      k,
      Object.fromEntries(Object.entries(v).map(([a, b]) => [a, Buffer.from(b)])),
    ]),
  ),
  secrets: new Map(
    Object.entries(secrets).map(([k, v]) => [
      k,
      Object.fromEntries(Object.entries(v).map(([a, b]) => [a, Buffer.from(b)])),
    ]),
  ),
});

describe("lab kubelet container env (pure)", () => {
  it("builds env from values, fieldRef, configMapKeyRef, secretKeyRef and envFrom, with $(VAR) expansion", () => {
    const container = {
      name: "c",
      envFrom: [{ configMapRef: { name: "all" }, prefix: "CM_" }],
      env: [
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "LEVEL", valueFrom: { configMapKeyRef: { name: "cfg", key: "level" } } },
        { name: "TOKEN", valueFrom: { secretKeyRef: { name: "sec", key: "token" } } },
        { name: "MAYBE", valueFrom: { secretKeyRef: { name: "gone", key: "k", optional: true } } },
        { name: "ARGS", value: "--node=$(NODE) $$(NODE) $(UNKNOWN)" },
      ],
    };
    assert.deepEqual(referencedNames(container), {
      configMaps: new Set(["all", "cfg"]),
      secrets: new Set(["sec", "gone"]),
    });
    const env = containerEnv(
      pod,
      container,
      facts,
      objects({ all: { a: "1" }, cfg: { level: "debug" } }, { sec: { token: "t0k" } }),
    );
    assert.equal(env.NODE, "n1");
    assert.equal(env.APP, "x");
    assert.equal(env.LEVEL, "debug");
    assert.equal(env.TOKEN, "t0k");
    assert.equal(env.CM_a, "1");
    assert.equal("MAYBE" in env, false, "an optional missing reference sets nothing");
    assert.equal(env.ARGS, "--node=n1 $(NODE) $(UNKNOWN)");
    assert.equal(env.KUBERNETES_SERVICE_HOST, "10.96.0.1");
    assert.equal(env.KUBERNETES_PORT_443_TCP_ADDR, "10.96.0.1");
    assert.equal(env.PATH, "/usr/bin");
  });

  it("a missing object or key is a CreateContainerConfigError naming it", () => {
    const missingKey = {
      name: "c",
      env: [{ name: "X", valueFrom: { secretKeyRef: { name: "sec", key: "nope" } } }],
    };
    assert.throws(
      () => containerEnv(pod, missingKey, facts, objects({}, { sec: { token: "t" } })),
      (error: Error) =>
        error instanceof ContainerConfigError &&
        /couldn't find key nope in Secret ns\/sec/.test(error.message),
    );
    const missingMap = {
      name: "c",
      env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "k" } } }],
    };
    assert.throws(() => containerEnv(pod, missingMap, facts, objects({})), /configmap "cfg" not found/);
  });

  it("expands $(VAR) in command and args as the kubelet does", () => {
    assert.equal(expandVariables("--node-name=$(NODE_NAME)", { NODE_NAME: "w1" }), "--node-name=w1");
    assert.equal(expandVariables("$$(NODE_NAME) $(MISSING)", { NODE_NAME: "w1" }), "$(NODE_NAME) $(MISSING)");
  });
});
