import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CniError, CniErrorCode } from "../lib/api/cni-protocol.js";
import { buildAgentRequest, parseCniArgs, parseCommand, parseNetworkConfig } from "./request.js";

const config = { cniVersion: "1.1.0", name: "clustermesh", type: "clustermesh", agentSocket: "/run/a.sock" };
const env = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "abc123",
  CNI_NETNS: "/run/netns/pod1",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=echo-1",
  CNI_PATH: "/opt/cni/bin",
};

function cniError(fn: () => unknown, code: number, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CniError);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

describe("CNI request parsing", () => {
  it("builds the agent request from the runtime's environment and stdin", () => {
    const request = buildAgentRequest("ADD", env, parseNetworkConfig(JSON.stringify(config)));
    assert.equal(request.containerId, "abc123");
    assert.equal(request.netns, "/run/netns/pod1");
    assert.deepEqual(request.args, { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "demo", K8S_POD_NAME: "echo-1" });
  });

  it("lets DEL and CHECK omit CNI_NETNS and STATUS omit everything but the config", () => {
    const { CNI_NETNS: _, ...noNetns } = env;
    assert.equal(buildAgentRequest("DEL", noNetns, config).netns, "");
    assert.equal(buildAgentRequest("STATUS", {}, config).containerId, "");
  });

  it("answers bad input with the spec's error codes and the field at fault", () => {
    cniError(() => parseCommand({}), CniErrorCode.InvalidEnvironment, /CNI_COMMAND is not set/);
    cniError(
      () => parseCommand({ CNI_COMMAND: "PUT" }),
      CniErrorCode.InvalidEnvironment,
      /unknown command "PUT"/,
    );
    cniError(() => parseNetworkConfig("{not json"), CniErrorCode.DecodeFailure, /not JSON/);
    cniError(() => parseNetworkConfig("[]"), CniErrorCode.DecodeFailure, /JSON object/);
    cniError(
      () => parseNetworkConfig('{"cniVersion":"1.1.0","type":"x"}'),
      CniErrorCode.InvalidNetworkConfig,
      /"name" is required/,
    );
    cniError(
      () => parseNetworkConfig('{"cniVersion":"9.9.9","name":"n","type":"x"}'),
      CniErrorCode.IncompatibleVersion,
      /cniVersion "9.9.9"/,
    );
    cniError(
      () => parseNetworkConfig(JSON.stringify({ ...config, mtu: 10 })),
      CniErrorCode.InvalidNetworkConfig,
      /"mtu"/,
    );
    const { CNI_NETNS: _, ...noNetns } = env;
    cniError(
      () => buildAgentRequest("ADD", noNetns, config),
      CniErrorCode.InvalidEnvironment,
      /CNI_NETNS is not set/,
    );
    cniError(
      () => buildAgentRequest("ADD", { ...env, CNI_IFNAME: "a-very-long-interface" }, config),
      CniErrorCode.InvalidEnvironment,
      /CNI_IFNAME/,
    );
    cniError(
      () => buildAgentRequest("ADD", { ...env, CNI_CONTAINERID: "../x" }, config),
      CniErrorCode.InvalidEnvironment,
      /CNI_CONTAINERID/,
    );
    cniError(() => parseCniArgs("K8S_POD_NAME"), CniErrorCode.InvalidEnvironment, /not KEY=VALUE/);
  });
});
