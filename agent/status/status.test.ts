import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { serviceTable } from "./status.js";

describe("status service table", () => {
  it("lists frontends with the backends of their slots", () => {
    const table = serviceTable({
      services: [
        [
          { address: "10.96.0.10", port: 80, proto: 6, backendSlot: 0 },
          { backendId: 0, count: 2, revNatIndex: 1 },
        ],
        [
          { address: "10.96.0.10", port: 80, proto: 6, backendSlot: 1 },
          { backendId: 5, count: 0, revNatIndex: 1 },
        ],
        [
          { address: "10.96.0.10", port: 80, proto: 6, backendSlot: 2 },
          { backendId: 6, count: 0, revNatIndex: 1 },
        ],
      ],
      backends: new Map([
        [5, { address: "10.0.0.2", port: 8080, proto: 6, state: 0 }],
        [6, { address: "10.0.0.3", port: 8080, proto: 6, state: 1 }],
      ]),
      revNat: new Map(),
      endpoints: [],
      ipcache: [],
    });
    assert.deepEqual(table, [
      {
        frontend: "10.96.0.10:80/TCP",
        backends: [
          { address: "10.0.0.2:8080", state: "active" },
          { address: "10.0.0.3:8080", state: "terminating" },
        ],
      },
    ]);
  });
});
