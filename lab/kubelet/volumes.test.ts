import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { resolveInLayers } from "./container-root.js";
import {
  containerMounts,
  hostPathOnNode,
  type NodeFileSystem,
  podVolumeBackings,
  SHARED_NODE_PATHS,
} from "./volumes.js";

const fs: NodeFileSystem = {
  nodeRoot: "/lab/nodes/n1/root",
  mapped: { "/sys/fs/bpf": "/lab/bpffs/n1", "/sys/fs/cgroup": "/cg/n1" },
  shared: SHARED_NODE_PATHS,
};

describe("lab kubelet volumes (pure)", () => {
  it("maps a node path to the node's root, its own kernel directories, or the host's shared paths", () => {
    assert.equal(hostPathOnNode("/opt/cni/bin", fs), "/lab/nodes/n1/root/opt/cni/bin");
    assert.equal(
      hostPathOnNode("/var/run/clustermesh", fs),
      "/lab/nodes/n1/root/run/clustermesh",
      "/var/run is /run",
    );
    assert.equal(hostPathOnNode("/sys/fs/bpf", fs), "/lab/bpffs/n1");
    assert.equal(hostPathOnNode("/sys/fs/bpf/clustermesh/", fs), "/lab/bpffs/n1/clustermesh");
    assert.equal(hostPathOnNode("/var/run/netns", fs), "/run/netns", "pods' netns are the host's");
    assert.equal(hostPathOnNode("/proc", fs), "/proc");
    assert.equal(hostPathOnNode("relative/path", fs), undefined);
    assert.equal(hostPathOnNode("/etc/x", { mapped: {}, shared: [] }), "/etc/x", "no node root: the host's");
  });

  it("resolves each mount's source, subPath, readOnly and propagation; errors name the mount", () => {
    const pod: V1Pod = {
      spec: {
        containers: [],
        volumes: [
          { name: "cni", hostPath: { path: "/etc/cni/net.d", type: "DirectoryOrCreate" } },
          { name: "config", configMap: { name: "kubeconfig" } },
        ],
      },
    };
    const backings = podVolumeBackings(pod, "/state/pods/u1", fs);
    const mounts = containerMounts(
      {
        name: "c",
        volumeMounts: [
          { name: "cni", mountPath: "/host/etc/cni/net.d", mountPropagation: "HostToContainer" },
          { name: "config", mountPath: "/etc/kubeconfig", subPath: "kubeconfig", readOnly: true },
        ],
      },
      backings,
    );
    assert.deepEqual(mounts, [
      {
        volume: "cni",
        source: "/lab/nodes/n1/root/etc/cni/net.d",
        target: "/host/etc/cni/net.d",
        readOnly: false,
        recursive: true,
        propagation: "slave",
      },
      {
        volume: "config",
        source: "/state/pods/u1/volumes/config/kubeconfig",
        target: "/etc/kubeconfig",
        readOnly: true,
        recursive: false,
        propagation: "private",
      },
    ]);
    assert.throws(
      () => containerMounts({ name: "c", volumeMounts: [{ name: "nope", mountPath: "/x" }] }, backings),
      /no volume named "nope"/,
    );
    assert.throws(
      () =>
        containerMounts(
          { name: "c", volumeMounts: [{ name: "config", mountPath: "/x", subPath: "../../etc" }] },
          backings,
        ),
      /subPath "..\/..\/etc" must be a relative path inside the volume/,
    );
    assert.throws(
      () =>
        podVolumeBackings(
          { spec: { containers: [], volumes: [{ name: "v", nfs: { server: "s", path: "/" } }] } },
          "/s",
          fs,
        ),
      /volume type nfs is not supported/,
    );
  });

  it("resolves a mount point through the image's symlinks, never out to the host", () => {
    const dir = mkdtempSync(join(tmpdir(), "cm-layers-"));
    try {
      const [upper, lower] = [join(dir, "upper"), join(dir, "lower")];
      mkdirSync(join(lower, "run"), { recursive: true });
      mkdirSync(join(lower, "var"), { recursive: true });
      mkdirSync(upper);
      symlinkSync("/run", join(lower, "var", "run"));
      symlinkSync("../run", join(lower, "rel"));
      assert.equal(resolveInLayers([upper, lower], "/var/run/clustermesh"), "/run/clustermesh");
      assert.equal(resolveInLayers([upper, lower], "/rel/x"), "/run/x");
      assert.equal(resolveInLayers([upper, lower], "/etc/coredns"), "/etc/coredns");
      symlinkSync("/loop", join(lower, "loop"));
      assert.throws(() => resolveInLayers([upper, lower], "/loop/x"), /too many symbolic links/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
