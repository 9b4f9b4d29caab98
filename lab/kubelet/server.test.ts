import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restrictedNodeLabels } from "./node-status.js";
import { portForwardStreamProblem, requestIdOf } from "./port-forward.js";
import { logOptions, parseTarget } from "./server.js";
import { expectedStreamCount, ResizeDecoder } from "./spdy/remotecommand.js";
import { negotiateProtocol } from "./spdy/upgrade.js";
import { parseExecQuery } from "./stream-protocol.js";

const headers = (h: Record<string, string>) => ({ header: (name: string) => h[name] });

describe("kubelet API requests", () => {
  it("parses the kubelet paths kube-apiserver calls and the pod subresource paths", () => {
    assert.deepEqual(parseTarget("/containerLogs/ns/p/c"), {
      namespace: "ns",
      pod: "p",
      container: "c",
      verb: "log",
    });
    assert.deepEqual(parseTarget("/exec/ns/p/c"), {
      namespace: "ns",
      pod: "p",
      container: "c",
      verb: "exec",
    });
    assert.deepEqual(parseTarget("/exec/ns/p/uid-1/c"), {
      namespace: "ns",
      pod: "p",
      uid: "uid-1",
      container: "c",
      verb: "exec",
    });
    assert.deepEqual(parseTarget("/attach/ns/p/c"), {
      namespace: "ns",
      pod: "p",
      container: "c",
      verb: "attach",
    });
    assert.deepEqual(parseTarget("/portForward/ns/p"), { namespace: "ns", pod: "p", verb: "portforward" });
    assert.deepEqual(parseTarget("/portForward/ns/p/uid-2"), {
      namespace: "ns",
      pod: "p",
      uid: "uid-2",
      verb: "portforward",
    });
    assert.deepEqual(parseTarget("/api/v1/namespaces/ns/pods/p/exec"), {
      namespace: "ns",
      pod: "p",
      verb: "exec",
    });
    assert.equal(parseTarget("/containerLogs/ns/p"), undefined);
    assert.equal(parseTarget("/exec/ns//c"), undefined);
    assert.equal(parseTarget("/metrics"), undefined);
  });

  it("reads exec options under the kubelet's names (input/output/error=1) and the pod subresource's", () => {
    const kubelet = parseExecQuery(new URLSearchParams("command=sh&command=-c&input=1&output=1&error=1"));
    assert.deepEqual(kubelet, {
      command: ["sh", "-c"],
      container: undefined,
      stdin: true,
      stdout: true,
      stderr: true,
      tty: false,
    });
    // With a tty stderr is merged into stdout, as the kubelet does.
    const tty = parseExecQuery(new URLSearchParams("command=sh&stdin=true&stdout=true&stderr=true&tty=true"));
    assert.deepEqual([tty.stdin, tty.stdout, tty.stderr, tty.tty], [true, true, false, true]);
    assert.equal(expectedStreamCount("v4.channel.k8s.io", tty), 4);
    assert.equal(expectedStreamCount("v2.channel.k8s.io", tty), 3);
  });

  it("reads log options", () => {
    assert.deepEqual(
      logOptions(new URLSearchParams("follow=true&tailLines=3&timestamps=true&limitBytes=10")),
      {
        follow: true,
        tailLines: 3,
        timestamps: true,
        limitBytes: 10,
      },
    );
    assert.equal(logOptions(new URLSearchParams("")).tailLines, -1);
    assert.deepEqual(
      logOptions(new URLSearchParams("sinceTime=2026-12-04T17:00:00Z")).since,
      new Date("2026-12-04T17:00:00Z"),
    );
  });

  it("negotiates the client's preferred protocol among the server's", () => {
    assert.equal(
      negotiateProtocol(
        ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"],
        ["v4.channel.k8s.io", "v3.channel.k8s.io"],
      ),
      "v4.channel.k8s.io",
    );
    assert.equal(negotiateProtocol(["v9"], ["v4.channel.k8s.io"]), undefined);
  });

  it("decodes terminal sizes split anywhere across data frames", () => {
    const decoder = new ResizeDecoder();
    assert.deepEqual(decoder.push(Buffer.from('{"Width":80,"Hei')), []);
    assert.deepEqual(decoder.push(Buffer.from('ght":24}\n{"Width":100,"Height":40}\n')), [
      { width: 80, height: 24 },
      { width: 100, height: 40 },
    ]);
  });

  it("validates port-forward streams and pairs them by requestID", () => {
    assert.equal(portForwardStreamProblem(headers({ port: "8080", streamType: "data" })), undefined);
    assert.match(
      portForwardStreamProblem(headers({ streamType: "data" })) ?? "",
      /"port" header is required/,
    );
    assert.match(portForwardStreamProblem(headers({ port: "0", streamType: "data" })) ?? "", /must be > 0/);
    assert.match(
      portForwardStreamProblem(headers({ port: "x", streamType: "data" })) ?? "",
      /unable to parse/,
    );
    assert.match(
      portForwardStreamProblem(headers({ port: "1", streamType: "stdin" })) ?? "",
      /invalid stream type/,
    );
    assert.equal(requestIdOf({ id: 3, ...headers({ requestID: "7" }) }), "7");
    // Old clients: error stream n, data stream n+2.
    assert.equal(requestIdOf({ id: 1, ...headers({ streamType: "error" }) }), "1");
    assert.equal(requestIdOf({ id: 3, ...headers({ streamType: "data" }) }), "1");
  });

  it("names the labels NodeRestriction keeps from kubelets", () => {
    assert.deepEqual(
      restrictedNodeLabels({
        "kubernetes.io/hostname": "n",
        "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
        "x.kubelet.kubernetes.io/ok": "",
        "example.com/mine": "",
        "k8s.io/nope": "",
      }),
      ["node-role.kubernetes.io/control-plane", "k8s.io/nope"],
    );
  });
});
