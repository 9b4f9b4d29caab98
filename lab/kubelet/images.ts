import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The lab has no container images. A few built-in "images" are programs of this repo; any other
 * image runs the container's `command`/`args` as a host binary (inside the pod's namespace).
 * Like a real image, a built-in image has an entrypoint (replaced by `command`) and default
 * arguments (replaced by `args`).
 */

export interface BuiltinImage {
  entrypoint: string[];
  args: string[];
}

const imagesDir = fileURLToPath(new URL("../images/", import.meta.url));

export const BUILTIN_IMAGES: Record<string, BuiltinImage> = {
  /** HTTP (8080) + TCP/UDP echo (9000) answering with pod, namespace, node and cluster. */
  "clustermesh/echo": { entrypoint: [process.execPath, join(imagesDir, "echo.js")], args: [] },
  /** Sleeps until told to stop; `kubectl exec` into it and use curl/wget/meshcurl. */
  "clustermesh/client": { entrypoint: [process.execPath, join(imagesDir, "client.js")], args: [] },
};

/** "docker.io/clustermesh/echo:latest" → "clustermesh/echo"; digests and registries are ignored. */
export function normalizeImage(image: string): string {
  let name = image.trim().split("@")[0];
  const lastSlash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  if (colon > lastSlash) name = name.slice(0, colon);
  for (const registry of ["docker.io/", "index.docker.io/", "ghcr.io/", "quay.io/"]) {
    if (name.startsWith(registry)) name = name.slice(registry.length);
  }
  if (name.startsWith("library/")) name = name.slice("library/".length);
  return name;
}

const IMAGE_REFERENCE =
  /^[a-z0-9]+([._-][a-z0-9]+)*(:\d+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

export type ImageResolution =
  | { ok: true; argv: string[]; builtin: boolean }
  | { ok: false; reason: "InvalidImageName" | "ErrImagePull" | "CreateContainerError"; message: string };

export function findExecutable(
  file: string,
  path = process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
): string | undefined {
  const candidates = file.includes("/") ? [file] : path.split(delimiter).map((dir) => join(dir, file));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // ENOENT or EACCES: not in this directory, or not executable there; try the next one
    }
  }
  return undefined;
}

/** What to run for a container, or why it cannot run (the reason goes to containerStatuses.waiting). */
export function resolveImage(
  image: string | undefined,
  command: string[] | undefined,
  args: string[] | undefined,
  exists: (file: string) => string | undefined = findExecutable,
): ImageResolution {
  if (!image || !IMAGE_REFERENCE.test(image)) {
    return {
      ok: false,
      reason: "InvalidImageName",
      message: `Failed to apply default image tag "${image ?? ""}": invalid reference format`,
    };
  }
  const builtin = BUILTIN_IMAGES[normalizeImage(image)];
  const entrypoint = command?.length ? command : builtin?.entrypoint;
  if (!entrypoint?.length) {
    return {
      ok: false,
      reason: "ErrImagePull",
      message: `image "${image}" is not a lab image (${Object.keys(BUILTIN_IMAGES).join(", ")}) and the container has no command to run as a host binary`,
    };
  }
  const argv = [...entrypoint, ...(args ?? (command?.length ? [] : (builtin?.args ?? [])))];
  const binary = exists(argv[0]);
  if (!binary) {
    return {
      ok: false,
      reason: "CreateContainerError",
      message: `exec: "${argv[0]}": executable file not found in $PATH`,
    };
  }
  return { ok: true, argv, builtin: Boolean(builtin) && !command?.length };
}
