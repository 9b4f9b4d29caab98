/**
 * The image as a runtime sees it: `npm run image`'s archive (image/build.sh) unpacked with umoci and
 * each entrypoint run with runc — the path a kind node takes after `kind load image-archive`, minus
 * containerd. Root: umoci keeps file ownership and runc creates namespaces.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const VERSION = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;

function run(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}) {
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd: options.cwd ?? REPO,
    encoding: "utf8",
    timeout: options.timeoutMs ?? 120_000,
  });
  assert.equal(result.status, 0, `${argv.join(" ")}: ${result.stderr}${result.error ?? ""}`);
  return result.stdout;
}

describe("the clustermesh image (root: umoci + runc)", { timeout: 1_800_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "cm-image-"));
  const archive = join(dir, "image.tar");
  const layout = join(dir, "layout");
  const bundle = join(dir, "bundle");
  const containers: string[] = [];

  /** Runs argv as the container's process (no terminal, no cgroup setup: see machine notes §11). */
  const inImage = (argv: string[], env: string[] = []) => {
    const config = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    config.process.terminal = false;
    config.process.args = argv;
    config.process.env = [...config.process.env, ...env];
    delete config.linux.resources;
    delete config.linux.cgroupsPath;
    config.linux.namespaces = config.linux.namespaces.filter((n: { type: string }) => n.type !== "cgroup");
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config));
    const id = `cm-image-${process.pid}-${containers.length}`;
    containers.push(id);
    return run(["runc", "run", "--bundle", bundle, id]);
  };

  before(() => {
    run(["bash", "image/build.sh", "--output", archive], { timeoutMs: 1_500_000 });
    run(["mkdir", "-p", layout]);
    run(["tar", "-xf", archive, "-C", layout]);
    run(["umoci", "unpack", "--image", `${layout}:${VERSION}`, bundle], { timeoutMs: 600_000 });
  });

  after(() => {
    for (const id of containers) spawnSync("runc", ["delete", "--force", id]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("is named for docker load and for containerd (kind load image-archive)", () => {
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
    assert.equal(index.manifests.length, 1);
    assert.equal(
      index.manifests[0].annotations["io.containerd.image.name"],
      `docker.io/clustermesh/clustermesh:${VERSION}`,
    );
    const [docker] = JSON.parse(readFileSync(join(layout, "manifest.json"), "utf8"));
    assert.deepEqual(docker.RepoTags, [`clustermesh/clustermesh:${VERSION}`]);
    assert.equal(docker.Layers.length, 2, "a Debian base layer and an application layer");
    for (const blob of [docker.Config, ...docker.Layers]) readFileSync(join(layout, blob));
  });

  it("runs every entrypoint", () => {
    assert.match(inImage(["meshctl", "--version"]), new RegExp(VERSION.replaceAll(".", "\\.")));
    assert.match(inImage(["clustermesh-agent", "--version"]), new RegExp(VERSION.replaceAll(".", "\\.")));
    assert.match(inImage(["clustermesh-apiserver", "--version"]), new RegExp(VERSION.replaceAll(".", "\\.")));
    const cni = JSON.parse(inImage(["clustermesh-cni"], ["CNI_COMMAND=VERSION"]));
    assert.equal(cni.cniVersion, "1.1.0");
  });

  it("carries the datapath's runtime: ip, libbpf, the BPF objects and a static CNI plugin", () => {
    assert.match(inImage(["ip", "-V"]), /iproute2/);
    assert.match(
      inImage(["sh", "-c", "ls /usr/lib/x86_64-linux-gnu/libbpf.so.1 /opt/clustermesh/bpf/build"]),
      /from_pod\.bpf\.o/,
    );
    assert.match(
      run(["file", "-L", join(bundle, "rootfs/opt/clustermesh/cni/build/clustermesh-cni")]),
      /statically linked/,
    );
  });
});
