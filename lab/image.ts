import { spawn } from "node:child_process";
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultImage } from "../lib/install/settings.js";
import { DIST } from "./control-plane.js";
import { type ImageStore, imageKey, readImageStore, type StoredImage } from "./kubelet/images.js";

/**
 * The mesh image on the lab's nodes, as `kind load image-archive` puts it on kind's: the layers
 * image/lab-layers.sh unpacks from this checkout's build (the Debian base of image/packages.txt and
 * the staged application — what `npm run image` packs), named as meshctl install names it.
 */

const LAYERS_SCRIPT = join(DIST, "..", "image", "lab-layers.sh");

/** Runs image/lab-layers.sh (cached: seconds unless the base or the build changed); its log lines go to progress. */
export function meshImageLayers(
  progress: (line: string) => void,
): Promise<Pick<StoredImage, "layers" | "env">> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [LAYERS_SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      for (const line of chunk.split("\n").filter(Boolean))
        if (line.startsWith("[image] ")) progress(line.slice(8));
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) {
        reject(
          new Error(
            `${LAYERS_SCRIPT} failed (exit ${code}): ${stderr.trim().split("\n").slice(-5).join("\n")}`,
          ),
        );
        return;
      }
      try {
        resolve(JSON.parse(stdout) as Pick<StoredImage, "layers" | "env">);
      } catch (error) {
        reject(new Error(`${LAYERS_SCRIPT} printed no layers: ${stdout.slice(0, 200)}`, { cause: error }));
      }
    });
  });
}

/** Writes the lab's image store (every node's kubelet reads it): the mesh image by the name install uses. */
export function writeImageStore(file: string, mesh: Pick<StoredImage, "layers" | "env">): void {
  const store: ImageStore = {
    [imageKey(defaultImage())]: { ...mesh, entrypoint: [], cmd: ["meshctl", "--help"] },
  };
  writeFileSync(file, `${JSON.stringify(store, null, 2)}\n`);
}

/**
 * Adds images to a lab's image store, as `kind load` puts images on a cluster's nodes: entries of
 * the same reference are replaced, the others kept. Kubelets read the store at every container
 * start, so the images can run at once.
 */
export function loadImages(file: string, images: ImageStore): void {
  const store = { ...readImageStore(file), ...images };
  // renamed into place: a kubelet reading it meanwhile sees the old store or the new, never half
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(store, null, 2)}\n`);
  renameSync(tmp, file);
}
