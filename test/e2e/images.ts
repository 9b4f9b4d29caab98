/**
 * The images Kubernetes' e2e tests (v1.33) run, made runnable on the lab's nodes. Names and tags are
 * the framework's (https://github.com/kubernetes/kubernetes/blob/v1.33.13/test/utils/image/manifest.go):
 *   - agnhost: the Go-built agnhost of the same release as the top layer (`/agnhost`, entrypoint
 *     `/agnhost`, default `pause`, as its Dockerfile), over the host's file system for the tools the
 *     tests exec beside it (sh, curl, nc, dig);
 *   - pause: `agnhost pause` (the same SIGTERM/SIGINT handling);
 *   - busybox: the host's programs (sh, nc, wget, sleep from Debian packages), default `sh`.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { type ImageStore, imageKey, type StoredImage } from "../../lab/kubelet/images.js";

export const E2E_IMAGE_REFERENCES = {
  agnhost: "registry.k8s.io/e2e-test-images/agnhost:2.53",
  pause: "registry.k8s.io/pause:3.10",
  busybox: "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
} as const;

const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The image store entries; `layerDir` gets the agnhost layer: a symlink `/agnhost` to the built
 * binary (an absolute link resolves inside the container, whose lower layer is the host's root).
 * `layerDir` must be on another file system than the host's root: overlayfs refuses a lower layer
 * inside another lower layer ("overlapping lowerdir path", ELOOP).
 */
export function e2eImages(agnhostBinary: string, layerDir: string): ImageStore {
  rmSync(layerDir, { recursive: true, force: true });
  mkdirSync(layerDir, { recursive: true });
  symlinkSync(agnhostBinary, join(layerDir, "agnhost"));
  const onHost = (entrypoint: string[], cmd: string[], layers = ["/"]): StoredImage => ({
    layers,
    env: { PATH: HOST_PATH },
    entrypoint,
    cmd,
  });
  return {
    [imageKey(E2E_IMAGE_REFERENCES.agnhost)]: onHost(["/agnhost"], ["pause"], [layerDir, "/"]),
    [imageKey(E2E_IMAGE_REFERENCES.pause)]: onHost(["/agnhost", "pause"], [], [layerDir, "/"]),
    [imageKey(E2E_IMAGE_REFERENCES.busybox)]: onHost([], ["sh"]),
  };
}
