import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  renameSync,
  type Stats,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, isAbsolute, join, normalize } from "node:path";
import type {
  V1DownwardAPIVolumeFile,
  V1KeyToPath,
  V1Pod,
  V1Volume,
  V1VolumeProjection,
} from "@kubernetes/client-node";
import { downwardField } from "./container-env.js";
import { type VolumeBacking, VolumeError } from "./volumes.js";

/**
 * Fills the directory of each volume the kubelet provides (emptyDir, configMap, secret, projected
 * with its service-account token, downwardAPI), as the kubelet's volume plugins do. Files are
 * replaced by rename, so a container reading one never sees half of it; a service-account token
 * is requested for the pod (TokenRequest bound to it, as the kubelet's projected token) and must be
 * refreshed before it expires: fillVolume returns when.
 */

export interface VolumeSourceApi {
  /** The ConfigMap's data and binaryData (undefined: it does not exist). */
  readConfigMap(namespace: string, name: string): Promise<Record<string, Buffer> | undefined>;
  readSecret(namespace: string, name: string): Promise<Record<string, Buffer> | undefined>;
  /** TokenRequest for the pod's service account, bound to the pod. */
  requestToken(
    pod: V1Pod,
    options: { expirationSeconds: number; audience?: string },
  ): Promise<{ token: string; expiresAt: Date }>;
}

const DEFAULT_MODE = 0o644;
/** The kubelet's floor for a projected token's lifetime. */
const MIN_TOKEN_SECONDS = 600;

function writeVolumeFile(
  dir: string,
  path: string,
  content: Buffer | string,
  mode: number,
  volume: string,
): void {
  if (isAbsolute(path) || normalize(path).split("/").includes(".."))
    throw new VolumeError(volume, `item path "${path}" must be relative and stay inside the volume`);
  const file = join(dir, path);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `..${process.pid}.tmp`);
  writeFileSync(tmp, content);
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

function writeKeys(
  dir: string,
  volume: string,
  what: string,
  data: Record<string, Buffer>,
  items: V1KeyToPath[] | undefined,
  mode: number,
): void {
  const selected: V1KeyToPath[] = items ?? Object.keys(data).map((key) => ({ key, path: key }));
  for (const item of selected) {
    const value = data[item.key];
    if (value === undefined)
      throw new VolumeError(volume, `${what} has no key "${item.key}" (items[].key of volume "${volume}")`);
    writeVolumeFile(dir, item.path, value, item.mode ?? mode, volume);
  }
}

export interface FillResult {
  /** When a token in the volume should be requested again (80% of its lifetime, as the kubelet). */
  refreshAt?: number;
}

export async function fillVolume(
  volume: V1Volume,
  dir: string,
  pod: V1Pod,
  api: VolumeSourceApi,
): Promise<FillResult> {
  mkdirSync(dir, { recursive: true });
  const namespace = pod.metadata?.namespace ?? "default";
  const configMap = async (name: string, optional: boolean) => {
    const data = await api.readConfigMap(namespace, name);
    if (!data && !optional) throw new VolumeError(volume.name, `configmap "${name}" not found`);
    return data;
  };
  const secret = async (name: string, optional: boolean) => {
    const data = await api.readSecret(namespace, name);
    if (!data && !optional) throw new VolumeError(volume.name, `secret "${name}" not found`);
    return data;
  };
  const downward = (items: V1DownwardAPIVolumeFile[], mode: number) => {
    for (const item of items) {
      if (!item.fieldRef)
        throw new VolumeError(
          volume.name,
          `downwardAPI item "${item.path}": only fieldRef is supported in the lab`,
        );
      writeVolumeFile(
        dir,
        item.path,
        downwardField(pod, item.fieldRef.fieldPath),
        item.mode ?? mode,
        volume.name,
      );
    }
  };

  if (volume.emptyDir) return {};
  if (volume.configMap) {
    const source = volume.configMap;
    const data = await configMap(source.name ?? "", source.optional === true);
    if (data)
      writeKeys(
        dir,
        volume.name,
        `configmap "${source.name}"`,
        data,
        source.items,
        source.defaultMode ?? DEFAULT_MODE,
      );
    return {};
  }
  if (volume.secret) {
    const source = volume.secret;
    const data = await secret(source.secretName ?? "", source.optional === true);
    if (data)
      writeKeys(
        dir,
        volume.name,
        `secret "${source.secretName}"`,
        data,
        source.items,
        source.defaultMode ?? DEFAULT_MODE,
      );
    return {};
  }
  if (volume.downwardAPI) {
    downward(volume.downwardAPI.items ?? [], volume.downwardAPI.defaultMode ?? DEFAULT_MODE);
    return {};
  }
  if (volume.projected) {
    const mode = volume.projected.defaultMode ?? DEFAULT_MODE;
    let refreshAt: number | undefined;
    for (const source of volume.projected.sources ?? ([] as V1VolumeProjection[])) {
      if (source.configMap) {
        const data = await configMap(source.configMap.name ?? "", source.configMap.optional === true);
        if (data)
          writeKeys(
            dir,
            volume.name,
            `configmap "${source.configMap.name}"`,
            data,
            source.configMap.items,
            mode,
          );
      } else if (source.secret) {
        const data = await secret(source.secret.name ?? "", source.secret.optional === true);
        if (data)
          writeKeys(dir, volume.name, `secret "${source.secret.name}"`, data, source.secret.items, mode);
      } else if (source.downwardAPI) {
        downward(source.downwardAPI.items ?? [], mode);
      } else if (source.serviceAccountToken) {
        const requested = source.serviceAccountToken.expirationSeconds ?? 3600;
        const expirationSeconds = Math.max(MIN_TOKEN_SECONDS, requested);
        const issuedAt = Date.now();
        const { token, expiresAt } = await api.requestToken(pod, {
          expirationSeconds,
          audience: source.serviceAccountToken.audience,
        });
        writeVolumeFile(dir, source.serviceAccountToken.path, token, mode, volume.name);
        const due = issuedAt + 0.8 * (expiresAt.getTime() - issuedAt);
        refreshAt = Math.min(refreshAt ?? due, due);
      } else {
        throw new VolumeError(volume.name, "projected source of an unsupported kind (clusterTrustBundle?)");
      }
    }
    return { refreshAt };
  }
  return {};
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** hostPath.type as the kubelet checks it (https://kubernetes.io/docs/concepts/storage/volumes/#hostpath). */
export function prepareHostPath(backing: Extract<VolumeBacking, { kind: "hostPath" }>): void {
  const { hostPath: path, type, volume } = backing;
  let stat = statOrUndefined(path);
  if (!stat && type === "DirectoryOrCreate") {
    mkdirSync(path, { recursive: true, mode: 0o755 });
    stat = statOrUndefined(path);
  }
  if (!stat && type === "FileOrCreate") {
    closeSync(openSync(path, "a", 0o644));
    stat = statOrUndefined(path);
  }
  const checks: Record<string, [(s: Stats) => boolean, string]> = {
    Directory: [(s) => s.isDirectory(), "a directory"],
    DirectoryOrCreate: [(s) => s.isDirectory(), "a directory"],
    File: [(s) => s.isFile(), "a file"],
    FileOrCreate: [(s) => s.isFile(), "a file"],
    Socket: [(s) => s.isSocket(), "a socket"],
    CharDevice: [(s) => s.isCharacterDevice(), "a character device"],
    BlockDevice: [(s) => s.isBlockDevice(), "a block device"],
  };
  const check = checks[type];
  if (!check) {
    if (type !== "") throw new VolumeError(volume, `hostPath.type "${type}" is not a hostPath type`);
    return;
  }
  if (!stat || !check[0](stat))
    throw new VolumeError(volume, `hostPath type check failed: ${path} is not ${check[1]}`);
}
