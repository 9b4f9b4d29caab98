import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { clientVersion, gitCommit } from "./version.js";

const A = "a".repeat(40);
const B = "b".repeat(40);

describe("meshctl version: where the commit comes from", () => {
  const root = mkdtempSync(join(tmpdir(), "meshctl-version-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const checkout = (name: string) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), '{"version":"1.2.3"}');
    return dir;
  };

  it("reads a loose ref, packed-refs and a detached HEAD", () => {
    const loose = checkout("loose");
    mkdirSync(join(loose, ".git", "refs", "heads"), { recursive: true });
    writeFileSync(join(loose, ".git", "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(loose, ".git", "refs", "heads", "main"), `${A}\n`);
    assert.equal(gitCommit(loose), A);

    const packed = checkout("packed");
    mkdirSync(join(packed, ".git"), { recursive: true });
    writeFileSync(join(packed, ".git", "HEAD"), "ref: refs/heads/main\n");
    writeFileSync(join(packed, ".git", "packed-refs"), `# pack-refs with: peeled\n${B} refs/heads/main\n`);
    assert.equal(gitCommit(packed), B);

    const detached = checkout("detached");
    mkdirSync(join(detached, ".git"), { recursive: true });
    writeFileSync(join(detached, ".git", "HEAD"), `${A}\n`);
    assert.equal(gitCommit(detached), A);
  });

  it("follows a worktree's .git file to the common dir", () => {
    const main = join(root, "main-git");
    mkdirSync(join(main, "worktrees", "wt"), { recursive: true });
    writeFileSync(join(main, "worktrees", "wt", "HEAD"), "ref: refs/heads/h/wt\n");
    writeFileSync(join(main, "worktrees", "wt", "commondir"), "../..\n");
    writeFileSync(join(main, "packed-refs"), `${B} refs/heads/h/wt\n`);
    const wt = checkout("wt");
    writeFileSync(join(wt, ".git"), `gitdir: ${join(main, "worktrees", "wt")}\n`);
    assert.equal(gitCommit(wt), B);
  });

  it("uses the build stamp without .git, and says unknown without either", () => {
    const installed = checkout("installed");
    const stamp = join(installed, "build-info.json");
    writeFileSync(stamp, JSON.stringify({ commit: A }));
    assert.deepEqual(clientVersion(installed, stamp), {
      version: "1.2.3",
      commit: A,
      commitSource: "build-info",
    });
    assert.deepEqual(clientVersion(installed, join(installed, "none.json")), {
      version: "1.2.3",
      commit: "unknown",
      commitSource: "unknown",
    });
  });
});
