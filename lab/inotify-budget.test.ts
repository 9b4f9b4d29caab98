import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inotifyProblem } from "./inotify-budget.js";

describe("inotify budget", () => {
  it("lets ten clusters in on a quiet default host and says what to raise on a busy one", () => {
    assert.equal(inotifyProblem(10, 18, 128), undefined);
    assert.equal(
      inotifyProblem(10, 40, 128),
      "10 clusters need about 90 inotify instances and 40 of 128 (fs.inotify.max_user_instances) are in use; raise the limit with: sysctl -w fs.inotify.max_user_instances=512",
    );
    assert.match(inotifyProblem(99, 0, 128) ?? "", /max_user_instances=1024$/);
  });
});
