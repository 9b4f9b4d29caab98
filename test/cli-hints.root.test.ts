/**
 * Every hint meshctl prints is a command that works as printed (issue 12 item 5), and
 * `clustermesh disable` undoes `enable` (root: a two-cluster lab). The hints are taken from the
 * output and run exactly as printed — also with an explicit --kubeconfig and no $KUBECONFIG.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { agentStatusCommand } from "../cli/commands/agent.js";
import {
  type CliResult,
  kubectl,
  kubectlOk,
  type LabFixture,
  labFixture,
  labUpArgs,
  MESHCTL,
} from "../testing/lab-fixture.js";

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 600_000): CliResult {
  const result = spawnSync(process.execPath, [MESHCTL, ...args], {
    encoding: "utf8",
    env,
    timeout: timeoutMs,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a printed `meshctl …` line as a user pastes it. */
function runPrinted(command: string, env: NodeJS.ProcessEnv): CliResult {
  assert.match(command, /^meshctl /);
  return run(command.slice("meshctl ".length).trim().split(/\s+/), env);
}

function hint(output: string, pattern: RegExp): string {
  const match = pattern.exec(output);
  assert.ok(match, `no hint matching ${pattern} in:\n${output}`);
  return match[1];
}

describe("meshctl hints work as printed; clustermesh disable (root: two-cluster lab)", () => {
  let fixture: LabFixture;
  /** No $KUBECONFIG: commands that need a kubeconfig must carry --kubeconfig themselves. */
  let bare: NodeJS.ProcessEnv;
  let c1: string;
  let c2: string;
  let connect: string;

  before(async () => {
    fixture = await labFixture([{ workers: 0 }, { workers: 0 }]);
    bare = { ...fixture.env, HOME: fixture.dir };
    delete bare.KUBECONFIG;
    c1 = `${fixture.name}-c1`;
    c2 = `${fixture.name}-c2`;
  });
  after(() => {
    run(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });

  it("lab up and clustermesh status print the connect command with its arguments, and it connects", () => {
    const up = run(labUpArgs(fixture), fixture.env);
    assert.equal(up.status, 0, up.stderr);
    connect = hint(up.stderr, /connect them with: (meshctl clustermesh connect [^\n(]+?) \(\d+\.\d s\)/);
    assert.equal(connect, `meshctl clustermesh connect --context ${c1} --destination-context ${c2}`);

    const status = run(["clustermesh", "status", "--context", c1], fixture.env);
    assert.ok(status.status === 0 || status.status === 1, status.stderr);
    assert.equal(hint(status.stdout, /Not connected to any cluster yet; connect with: (.+)$/m), connect);

    const connected = runPrinted(connect, fixture.env);
    assert.equal(connected.status, 0, connected.stderr);
    assert.match(connected.stderr, /Connected cluster c1 <=> c2/);
  });

  it("the agent status command of the status hints works for a lab not named lab", () => {
    const command = agentStatusCommand(fixture.name, "c1-control-plane");
    const result = runPrinted(`${command} -o json`, fixture.env);
    assert.ok(result.status === 0 || result.status === 1, result.stderr);
    assert.equal(JSON.parse(result.stdout).node, "c1-control-plane");
  });

  it("enable with a changed id points to disable, which points to disconnect; then disable undoes enable", () => {
    const kubeconfig = ["--kubeconfig", fixture.kubeconfig];
    const changed = run(["clustermesh", "enable", "--context", c1, ...kubeconfig, "--cluster-id", "9"], bare);
    assert.equal(changed.status, 2, changed.stderr);
    const disable = hint(changed.stderr, /\(disable it first: (meshctl clustermesh disable [^)]+)\)/);
    assert.equal(disable, `meshctl clustermesh disable --context ${c1} --kubeconfig ${fixture.kubeconfig}`);

    const refused = runPrinted(disable, bare);
    assert.equal(refused.status, 2, refused.stderr);
    const disconnect = hint(refused.stderr, /still connected to c2; disconnect first: (meshctl .+)$/m);
    assert.equal(
      disconnect,
      `meshctl clustermesh disconnect --context ${c1} --kubeconfig ${fixture.kubeconfig} --destination-context ${c2}`,
    );
    assert.equal(
      kubectl(fixture, "c1", ["-n", "kube-system", "get", "configmap", "clustermesh-config"]).status,
      0,
    );

    const disconnected = runPrinted(disconnect, bare);
    assert.equal(disconnected.status, 0, disconnected.stderr);
    const disabled = runPrinted(disable, bare);
    assert.equal(disabled.status, 0, disabled.stderr);
    assert.match(
      disabled.stderr,
      /Removed from kube-system: Service\/clustermesh-apiserver, ConfigMap\/clustermesh-config/,
    );

    for (const [kind, name] of [
      ["configmap", "clustermesh-config"],
      ["service", "clustermesh-apiserver"],
      ["secret", "clustermesh-apiserver-server-cert"],
      ["secret", "clustermesh-apiserver-remote-cert"],
      ["secret", "clustermesh-remotes"],
    ]) {
      const got = kubectl(fixture, "c1", ["-n", "kube-system", "get", kind, name]);
      assert.notEqual(got.status, 0, `${kind}/${name} left`);
      assert.match(got.stderr, /NotFound/);
    }
    assert.equal(
      kubectl(fixture, "c1", ["-n", "kube-system", "get", "secret", "clustermesh-ca"]).status,
      0,
      "CA kept",
    );
    // disable undoes enable (the Service is gone, above); the workloads are install's and stay,
    // and the other cluster's clustermesh-apiserver is untouched
    const c2Apiserver = JSON.parse(
      kubectlOk(fixture, "c2", [
        "-n",
        "kube-system",
        "get",
        "deployment",
        "clustermesh-apiserver",
        "-o",
        "json",
      ]),
    ) as { status: { readyReplicas?: number } };
    assert.equal(c2Apiserver.status.readyReplicas, 1, "c2 untouched");

    const again = runPrinted(disable, bare);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /not enabled .*nothing to remove/);
  });

  it("after disable, enable takes a new id; connecting a disabled cluster names the enable command", () => {
    const kubeconfig = ["--kubeconfig", fixture.kubeconfig];
    const enabled = run(["clustermesh", "enable", "--context", c1, ...kubeconfig, "--cluster-id", "9"], bare);
    assert.equal(enabled.status, 0, enabled.stderr);
    const status = run(["clustermesh", "status", "--context", c1, "-o", "json"], fixture.env);
    const report = JSON.parse(status.stdout);
    assert.equal(report.access_information.cluster_id, "9");
    assert.equal(report.apiserver.ready, true, report.apiserver.detail);

    const disabled = run(["clustermesh", "disable", "--context", c1, ...kubeconfig], bare);
    assert.equal(disabled.status, 0, disabled.stderr);
    const refused = runPrinted(`${connect} --kubeconfig ${fixture.kubeconfig}`, bare);
    assert.equal(refused.status, 2, refused.stderr);
    const enable = hint(
      refused.stderr,
      /not found; run: (meshctl clustermesh enable [^(]+?) \(outside a lab/,
    );
    assert.equal(enable, `meshctl clustermesh enable --context ${c1} --kubeconfig ${fixture.kubeconfig}`);
    const reenabled = runPrinted(enable, bare);
    assert.equal(reenabled.status, 0, reenabled.stderr);
    const connected = runPrinted(connect, fixture.env);
    assert.equal(connected.status, 0, connected.stderr);
    const after = JSON.parse(
      run(["clustermesh", "status", "--context", c1, "-o", "json"], fixture.env).stdout,
    );
    assert.equal(after.access_information.cluster_id, "1", "the lab's id, as enable without flags takes it");
    assert.deepEqual(after.connectivity.expectedClusters, ["c2"]);
  });
});
