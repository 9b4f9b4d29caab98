/**
 * The native CNI plugin (cni/plugin.c) as a runtime runs it: environment + network configuration
 * on stdin, result or CNI error on stdout. A unix-socket HTTP server stands in for the agent's
 * socket so every request the plugin sends and every reply it gets can be checked; the plugin
 * against the real agent runs in the agent, lab and multicluster suites.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cniPluginBinary } from "../lib/cni-plugin.js";

interface Run {
  status: number | null;
  output: Record<string, unknown> | null;
  stdout: string;
}

function runPlugin(env: Record<string, string>, stdin: string): Promise<Run> {
  // async spawn: the stand-in agent answers on this same event loop
  return new Promise((resolve, reject) => {
    const child = spawn(cniPluginBinary(), [], { env, stdio: ["pipe", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (status) =>
      resolve({ status, stdout, output: stdout.trim() ? JSON.parse(stdout) : null }),
    );
    child.stdin.on("error", () => {
      // a plugin that fails before reading stdin closes it: EPIPE is expected then
    });
    child.stdin.end(stdin);
  });
}

describe("the CNI plugin binary", () => {
  const dir = mkdtempSync(join(tmpdir(), "cni-plugin-"));
  const socket = join(dir, "agent.sock");
  const received: { path: string; body: Record<string, unknown> }[] = [];
  let reply: { status: number; body: string } = { status: 200, body: "{}" };
  let server: Server;
  const config = { cniVersion: "1.0.0", name: "clustermesh", type: "clustermesh", agentSocket: socket };
  const env = {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "abc123",
    CNI_NETNS: "/run/netns/pod1",
    CNI_IFNAME: "eth0",
    CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=echo-1",
    CNI_PATH: "/opt/cni/bin",
  };

  before(async () => {
    server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => {
        text += chunk;
      });
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: JSON.parse(text) });
        res.writeHead(reply.status, { "content-type": "application/json" });
        res.end(reply.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });

  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is a static executable", () => {
    const file = spawnSync("file", ["-L", cniPluginBinary()], { encoding: "utf8" });
    assert.match(file.stdout, /statically linked/);
  });

  it("answers VERSION without a configuration", async () => {
    const run = await runPlugin({ CNI_COMMAND: "VERSION" }, "");
    assert.equal(run.status, 0);
    assert.deepEqual(run.output, {
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  it("forwards ADD to the agent and prints its result in the configuration's cniVersion", async () => {
    received.length = 0;
    reply = {
      status: 200,
      body: JSON.stringify({
        cniVersion: "1.1.0",
        interfaces: [{ name: "eth0", sandbox: "/run/netns/pod1" }],
        ips: [{ address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 0 }],
      }),
    };
    const withExtra = { ...config, mtu: 1450, extra: { nested: ["a", "\u00e9\n"] } };
    const run = await runPlugin(env, JSON.stringify(withExtra));
    assert.equal(run.status, 0, run.stdout);
    assert.deepEqual(run.output, {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: "/run/netns/pod1" }],
      ips: [{ address: "10.1.0.5/32", gateway: "169.254.1.1", interface: 0 }],
    });
    assert.equal(received.length, 1);
    assert.equal(received[0].path, "/v1/cni/add");
    assert.deepEqual(received[0].body, {
      command: "ADD",
      containerId: "abc123",
      netns: "/run/netns/pod1",
      ifname: "eth0",
      args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "demo", K8S_POD_NAME: "echo-1" },
      config: withExtra,
    });
  });

  it("lets DEL omit CNI_NETNS and STATUS omit everything but the configuration", async () => {
    received.length = 0;
    reply = { status: 200, body: "{}" };
    const { CNI_NETNS: _, ...noNetns } = env;
    const del = await runPlugin({ ...noNetns, CNI_COMMAND: "DEL" }, JSON.stringify(config));
    assert.equal(del.status, 0);
    assert.equal(del.stdout, "", "DEL prints nothing on success");
    const status = await runPlugin({ CNI_COMMAND: "STATUS" }, JSON.stringify(config));
    assert.equal(status.status, 0);
    assert.deepEqual(
      received.map((r) => [r.path, r.body.netns, r.body.containerId]),
      [
        ["/v1/cni/del", "", "abc123"],
        ["/v1/cni/status", "", ""],
      ],
    );
  });

  it("prints the agent's error with its code and details", async () => {
    reply = {
      status: 500,
      body: JSON.stringify({ cniVersion: "1.1.0", code: 7, msg: "no pod", details: "x" }),
    };
    const run = await runPlugin(env, JSON.stringify(config));
    assert.equal(run.status, 1);
    assert.deepEqual(run.output, { cniVersion: "1.0.0", code: 7, msg: "no pod", details: "x" });
    reply = { status: 200, body: "not json" };
    const garbled = await runPlugin(env, JSON.stringify(config));
    assert.equal(garbled.status, 1);
    assert.equal(garbled.output?.code, 5);
    assert.match(String(garbled.output?.msg), /not a JSON object/);
  });

  it("tells ADD to try again while the agent is down, and lets DEL succeed", async () => {
    const down = { ...config, agentSocket: join(dir, "missing.sock") };
    const add = await runPlugin(env, JSON.stringify(down));
    assert.equal(add.status, 1);
    assert.equal(add.output?.code, 11);
    assert.match(String(add.output?.msg), /agent is not running \(no socket at .*missing\.sock\)/);
    const del = await runPlugin({ ...env, CNI_COMMAND: "DEL" }, JSON.stringify(down));
    assert.equal(del.status, 0);
    reply = { status: 503, body: JSON.stringify({ code: 11, msg: "restoring" }) };
    const delBusy = await runPlugin({ ...env, CNI_COMMAND: "DEL" }, JSON.stringify(config));
    assert.equal(delBusy.status, 0, "DEL answered try-again-later is not a failure");
  });

  it("answers bad input with the spec's error codes and the field at fault", async () => {
    const json = JSON.stringify(config);
    const cases: [Record<string, string>, string, number, RegExp][] = [
      [{}, json, 4, /CNI_COMMAND is not set/],
      [{ CNI_COMMAND: "PUT" }, json, 4, /unknown command "PUT"/],
      [env, "{not json", 6, /not JSON/],
      [env, "[]", 6, /must be a JSON object/],
      [env, '{"cniVersion":"1.1.0","name":"n","type":"x"} trailing', 6, /not JSON/],
      [env, '{"cniVersion":"1.1.0","type":"x"}', 7, /"name" is required/],
      [env, '{"cniVersion":"9.9.9","name":"n","type":"x"}', 1, /cniVersion "9.9.9"/],
      [env, JSON.stringify({ ...config, mtu: 10 }), 7, /"mtu" must be an integer >= 576/],
      [env, JSON.stringify({ ...config, mtu: "1500" }), 7, /"mtu"/],
      [env, JSON.stringify({ ...config, agentSocket: 5 }), 7, /"agentSocket"/],
      [{ ...env, CNI_NETNS: "" }, json, 4, /CNI_NETNS is not set/],
      [{ ...env, CNI_IFNAME: "a-very-long-interface" }, json, 4, /CNI_IFNAME/],
      [{ ...env, CNI_IFNAME: "eth/0" }, json, 4, /CNI_IFNAME/],
      [{ ...env, CNI_CONTAINERID: "../x" }, json, 4, /CNI_CONTAINERID/],
      [{ ...env, CNI_ARGS: "K8S_POD_NAME" }, json, 4, /CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE/],
    ];
    for (const [caseEnv, stdin, code, message] of cases) {
      const run = await runPlugin(caseEnv, stdin);
      assert.equal(run.status, 1, `${JSON.stringify(caseEnv)} ${stdin}`);
      assert.equal(run.output?.code, code, `${stdin}: ${run.stdout}`);
      assert.match(String(run.output?.msg), message);
    }
  });
});
