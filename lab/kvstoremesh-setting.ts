import { checkInstallSettings, type InstallSettings } from "../lib/install/settings.js";
import { UsageError } from "../lib/usage-error.js";

/**
 * The lab's choice of KVStoreMesh mode (issue 18; Cilium's `clustermesh.apiserver.kvstoremesh.enabled`,
 * on by default since 1.16): handed to `meshctl install` as its `kvstoremesh` setting. Builds whose
 * install has no such setting (only direct mode: agents watch every remote's etcd) are told apart
 * by what checkInstallSettings returns, so a lab never claims a mode it did not install.
 */
export function kvstoremeshAvailable(): boolean {
  const probe = checkInstallSettings({ clusterName: "probe", clusterId: 1, k8sServiceHost: "127.0.0.1" });
  return "kvstoremesh" in probe;
}

export class KvstoremeshUnavailableError extends UsageError {}

/** Refuses a requested mode this build cannot install; nothing requested: the install's default. */
export function checkKvstoremeshChoice(enabled: boolean | undefined): void {
  if (enabled !== undefined && !kvstoremeshAvailable())
    throw new KvstoremeshUnavailableError(
      `--kvstoremesh ${enabled ? "on" : "off"}: this build's meshctl install has no KVStoreMesh setting (clustermesh.apiserver.kvstoremesh.enabled); only direct mode, leave the flag out`,
    );
}

/** The settings with the requested mode (checked by checkKvstoremeshChoice first). */
export function withKvstoremesh(settings: InstallSettings, enabled: boolean | undefined): InstallSettings {
  // Object.assign: the setting is not in InstallSettings until the KVStoreMesh install lands
  return enabled === undefined ? settings : Object.assign({ ...settings }, { kvstoremesh: enabled });
}
