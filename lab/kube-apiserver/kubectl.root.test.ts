import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { CoreV1Api } from "@kubernetes/client-node";
import { WebSocketServer } from "ws";
import { parse } from "yaml";
import { TestCluster } from "./test-cluster.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("kube-apiserver with the real kubectl (root: starts etcd)", () => {
  const cluster = new TestCluster();
  const kubectl = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      // Asynchronous on purpose: the server runs in this process and must keep answering.
      execFile(
        "kubectl",
        ["--kubeconfig", cluster.kubeconfigPath, ...args],
        { timeout: 30_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
    });
  const ok = async (...args: string[]) => {
    const run = await kubectl(...args);
    assert.equal(run.code, 0, `kubectl ${args.join(" ")} failed: ${run.stderr}`);
    return run.stdout;
  };

  before(() => cluster.start());
  after(() => cluster.stop());

  const manifest = (image: string, replicas: number) => `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: ${image}
        ports: [{containerPort: 8080}]
        env: [{name: A, value: "1"}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  labels: {app: client}
spec:
  containers:
  - name: client
    image: client:1
`;

  it("apply -f creates, and re-applying a change patches (client-side apply)", async () => {
    const file = `${cluster.dir}/app.yaml`;
    writeFileSync(file, manifest("echo:1", 2));
    assert.match(await ok("apply", "-f", file), /deployment.apps\/web created/);
    writeFileSync(file, manifest("echo:2", 3));
    const second = await ok("apply", "-f", file);
    assert.match(second, /deployment.apps\/web configured/);
    assert.match(second, /service\/web unchanged/);
    const deployment = JSON.parse(await ok("get", "deploy", "web", "-n", "demo", "-o", "json"));
    assert.equal(deployment.spec.template.spec.containers[0].image, "echo:2");
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.metadata.generation, 2);
    assert.match(
      deployment.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"],
      /echo:2/,
    );
    const serverSide = await kubectl("apply", "--server-side", "-f", file);
    assert.equal(serverSide.code, 0, serverSide.stderr);
  });

  it("get prints tables, -o yaml and -o json, and short names resolve", async () => {
    assert.match(await ok("get", "svc", "-n", "demo"), /^NAME\s+.*\nweb\s/m);
    const yaml = parse(await ok("get", "po", "client", "-n", "demo", "-o", "yaml"));
    assert.equal(yaml.kind, "Pod");
    assert.equal(yaml.status.phase, "Pending");
    const list = JSON.parse(await ok("get", "ns", "-o", "json"));
    assert.ok(list.items.some((n: { metadata: { name: string } }) => n.metadata.name === "demo"));
    assert.match(
      await ok("get", "deploy,svc", "-n", "demo", "-o", "name"),
      /deployment.apps\/web\nservice\/web/,
    );
    assert.match(await ok("api-resources"), /deployments\s+deploy\s+apps\/v1\s+true\s+Deployment/);
  });

  it("get -w streams changes until its timeout", async () => {
    const watching = kubectl("get", "cm", "-n", "demo", "-w", "--request-timeout=3s", "-o", "name");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await ok("create", "configmap", "watched", "-n", "demo", "--from-literal=a=b");
    const run = await watching;
    assert.match(run.stdout, /configmap\/watched/);
  });

  it("annotate, label and scale", async () => {
    await ok("annotate", "svc", "web", "-n", "demo", "team=mesh");
    await ok("label", "po", "client", "-n", "demo", "tier=front");
    await ok("scale", "deploy", "web", "-n", "demo", "--replicas=5");
    const svc = JSON.parse(await ok("get", "svc", "web", "-n", "demo", "-o", "json"));
    assert.equal(svc.metadata.annotations.team, "mesh");
    assert.match(await ok("get", "po", "-n", "demo", "-l", "tier=front", "-o", "name"), /pod\/client/);
    assert.equal(await ok("get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas}"), "5");
    const conflict = await kubectl("label", "po", "client", "-n", "demo", "tier=back");
    assert.notEqual(conflict.code, 0, "relabelling without --overwrite is refused");
  });

  it("describe pod, service and deployment", async () => {
    assert.match(
      await ok("describe", "pod", "client", "-n", "demo"),
      /Name:\s+client[\s\S]*Image:\s+client:1/,
    );
    assert.match(
      await ok("describe", "svc", "web", "-n", "demo"),
      /Type:\s+ClusterIP[\s\S]*IP:\s+10\.96\.0\.\d+/,
    );
    assert.match(await ok("describe", "deploy", "web", "-n", "demo"), /Replicas:\s+5 desired/);
  });

  describe("logs and exec through the kubelet proxy", () => {
    let kubelet: Server;
    const seen: { path: string; upgrade?: string; user?: string }[] = [];

    before(async () => {
      const pki = cluster.pki;
      const wss = new WebSocketServer({
        noServer: true,
        handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith("v5.")) ?? false,
      });
      kubelet = createServer({
        cert: readFileSync(pki.kubelets["node-a"].cert),
        key: readFileSync(pki.kubelets["node-a"].key),
        ca: readFileSync(pki.ca.cert),
        requestCert: true,
        rejectUnauthorized: true,
      });
      kubelet.on("request", (req, res) => {
        seen.push({
          path: req.url ?? "",
          user: (req.socket as TLSSocket).getPeerCertificate().subject?.CN as string,
        });
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.write("line 1\n");
        setTimeout(() => res.end("line 2\n"), 100);
      });
      kubelet.on("upgrade", (req, socket, head) => {
        seen.push({ path: req.url ?? "", upgrade: req.headers.upgrade });
        const command = new URL(req.url ?? "", "https://x").searchParams.getAll("command");
        wss.handleUpgrade(req, socket, head, (ws) => {
          // v5.channel.k8s.io: first byte is the channel (1 stdout, 3 error/status).
          ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(`${command.slice(1).join(" ")}\n`)]));
          const status =
            command[0] === "false"
              ? {
                  status: "Failure",
                  reason: "NonZeroExitCode",
                  details: { causes: [{ reason: "ExitCode", message: "3" }] },
                }
              : { status: "Success" };
          ws.send(
            Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ metadata: {}, ...status }))]),
          );
          ws.close(1000);
        });
      });
      await new Promise<void>((resolve) => kubelet.listen(0, "127.0.0.1", resolve));
      const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
      await core.createNode({
        body: {
          metadata: { name: "node-a" },
          status: {
            addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
            daemonEndpoints: { kubeletEndpoint: { Port: (kubelet.address() as AddressInfo).port } },
          },
        },
      });
      await core.createNamespacedPod({
        namespace: "demo",
        body: {
          metadata: { name: "runner" },
          spec: { nodeName: "node-a", containers: [{ name: "c", image: "client:1" }] },
        },
      });
    });
    after(() => new Promise<void>((resolve) => kubelet.close(() => resolve())));

    it("kubectl logs [-f] reaches the kubelet with the same path, as the kubelet client", async () => {
      assert.equal(await ok("logs", "runner", "-n", "demo"), "line 1\nline 2\n");
      assert.equal(await ok("logs", "-f", "runner", "-n", "demo"), "line 1\nline 2\n");
      const log = seen.filter((s) => s.path.startsWith("/api/v1/namespaces/demo/pods/runner/log"));
      assert.equal(log.length, 2);
      assert.match(log[1].path, /follow=true/);
      assert.equal(log[0].user, "kube-apiserver-kubelet-client");
    });

    it("kubectl exec upgrades through to the kubelet and propagates the exit code", async () => {
      assert.equal(await ok("exec", "runner", "-n", "demo", "--", "echo", "hi", "there"), "hi there\n");
      const exec = seen.find((s) => s.path.startsWith("/api/v1/namespaces/demo/pods/runner/exec"));
      assert.ok(exec, "the kubelet saw the exec path");
      assert.match(exec.path, /command=echo&command=hi&command=there/);
      assert.equal(exec.upgrade?.toLowerCase(), "websocket");
      const failing = await kubectl("exec", "runner", "-n", "demo", "--", "false");
      assert.equal(failing.code, 3);
    });

    it("refuses logs of a pod without a node", async () => {
      const run = await kubectl("logs", "client", "-n", "demo");
      assert.notEqual(run.code, 0);
      assert.match(run.stderr, /does not have a host assigned/);
    });
  });

  it("delete removes objects (and a deployment's owned pods)", async () => {
    await ok("delete", "svc", "web", "-n", "demo");
    assert.match((await kubectl("get", "svc", "web", "-n", "demo")).stderr, /NotFound/);
    await ok("delete", "deploy", "web", "-n", "demo");
    await ok("delete", "pod", "runner", "-n", "demo", "--grace-period=0", "--force");
    await ok("delete", "namespace", "demo");
    assert.match((await kubectl("get", "ns", "demo")).stderr, /NotFound/);
  });
});
