import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CniError } from "../../lib/api/cni-protocol.js";
import { parseCniRequest } from "./server.js";

describe("CNI request parsing", () => {
  it("rejects bodies that are not a request with a CNI error code", () => {
    const code = (text: string) => {
      try {
        parseCniRequest(text, "add");
      } catch (error) {
        assert.ok(error instanceof CniError);
        return error.code;
      }
      return 0;
    };
    assert.equal(code("{nope"), 6);
    assert.equal(code("[]"), 7);
    assert.equal(code('{"config": null}'), 7);
    assert.equal(code('{"config": {}, "args": 5}'), 6);
    assert.equal(parseCniRequest('{"containerId":"c","config":{"name":"n"}}', "del").command, "DEL");
  });
});
