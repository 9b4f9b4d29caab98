import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { errorChainSummary, formatErrorChain } from "./error-chain.js";

describe("formatErrorChain", () => {
  it("prints the message and every cause once, outermost first", () => {
    const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:2379"), { code: "ECONNREFUSED" });
    const middle = new Error("no answer from etcd", { cause: root });
    const outer = new Error("cannot read the cluster state", { cause: middle });
    assert.equal(
      formatErrorChain(outer),
      [
        "cannot read the cluster state",
        "  caused by: no answer from etcd",
        "  caused by: connect ECONNREFUSED 127.0.0.1:2379",
      ].join("\n"),
    );
  });

  it("errorChainSummary puts the same chain on one line", () => {
    const outer = new Error("probe", {
      cause: new Error("no answer within 500 ms", { cause: "ECONNREFUSED" }),
    });
    assert.equal(errorChainSummary(outer), "probe: no answer within 500 ms: ECONNREFUSED");
  });

  it("skips a cause whose message the wrapper already quotes", () => {
    const cause = new Error("ENOENT: no such file or directory, open '/x'");
    const outer = new Error(`--kubeconfig: ${cause.message}`, { cause });
    assert.equal(formatErrorChain(outer), "--kubeconfig: ENOENT: no such file or directory, open '/x'");
  });

  it("handles non-Error values and causes, and cycles", () => {
    assert.equal(formatErrorChain("plain"), "plain");
    assert.equal(formatErrorChain(new Error("outer", { cause: 42 })), "outer\n  caused by: 42");
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    assert.equal(formatErrorChain(b), "b\n  caused by: a");
  });

  it("an AggregateError without a message lists its errors", () => {
    const outer = new Error("connect failed", {
      cause: new AggregateError([new Error("ECONNREFUSED ::1"), new Error("ECONNREFUSED 127.0.0.1")]),
    });
    assert.equal(
      formatErrorChain(outer),
      "connect failed\n  caused by: ECONNREFUSED ::1; ECONNREFUSED 127.0.0.1",
    );
  });
});
