import { accessSync, constants, existsSync, lstatSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The lab's images. Images in the node's image store (the mesh image the lab builds from this
 * checkout, as `kind load` puts one on a node) have layers: the container's root is them. A few
 * built-in "images" are programs of this repo; any other image runs the container's
 * `command`/`args` as a host binary — both with the host's file system as their one layer. Like a
 * real image, an image has an entrypoint (replaced by `command`) and default arguments (replaced by
 * `args`).
 */

/** An image on the node: its unpacked layers (top first) and its config. */
export interface StoredImage {
  layers: string[];
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
}

/** The node's images by reference (`clustermesh/clustermesh:0.1.0`, registry and digest ignored). */
export type ImageStore = Record<string, StoredImage>;

/** The image store file the lab writes (`--image-store`); read at every container start, so loads apply at once. */
export function readImageStore(file: string | undefined): ImageStore {
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, "utf8")) as ImageStore;
}

/** "docker.io/clustermesh/clustermesh:0.1.0" → "clustermesh/clustermesh:0.1.0"; no tag → ":latest". */
export function imageKey(image: string): string {
  const name = normalizeImage(image);
  const reference = image.trim().split("@")[0];
  const colon = reference.lastIndexOf(":");
  const tag = colon > reference.lastIndexOf("/") ? reference.slice(colon + 1) : "latest";
  return `${name}:${tag}`;
}

const HOST_LAYERS = ["/"];

/** Whether a directory entry exists (an absolute symlink in a layer points into the image, not the host). */
function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    // ENOENT/ENOTDIR: not in this layer
    return false;
  }
}

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
  | { ok: true; argv: string[]; builtin: boolean; layers: string[]; env: Record<string, string> }
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
  store: ImageStore = {},
): ImageResolution {
  if (!image || !IMAGE_REFERENCE.test(image)) {
    return {
      ok: false,
      reason: "InvalidImageName",
      message: `Failed to apply default image tag "${image ?? ""}": invalid reference format`,
    };
  }
  const stored = store[imageKey(image)];
  if (stored) return resolveStored(image, stored, command, args);
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
  return {
    ok: true,
    argv,
    builtin: Boolean(builtin) && !command?.length,
    layers: HOST_LAYERS,
    env: { PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
  };
}

function resolveStored(
  image: string,
  stored: StoredImage,
  command: string[] | undefined,
  args: string[] | undefined,
): ImageResolution {
  const argv = [
    ...(command?.length ? command : stored.entrypoint),
    ...(args ?? (command?.length ? [] : stored.cmd)),
  ];
  if (argv.length === 0)
    return { ok: false, reason: "CreateContainerError", message: `image "${image}" has no command to run` };
  // looked up as the container's exec will: in the image's PATH, through its layers
  const inImage = (file: string) => stored.layers.some((layer) => entryExists(join(layer, file)));
  const found = argv[0].includes("/")
    ? inImage(argv[0])
    : (stored.env.PATH ?? "").split(":").some((dir) => inImage(join(dir, argv[0])));
  if (!found) {
    return {
      ok: false,
      reason: "CreateContainerError",
      message: `exec: "${argv[0]}": executable file not found in $PATH of image "${image}"`,
    };
  }
  return { ok: true, argv, builtin: false, layers: stored.layers, env: stored.env };
}
