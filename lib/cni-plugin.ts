import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The CNI plugin binary of this checkout (a static ELF from cni/plugin.c, built by
 * scripts/bootstrap.sh with `make -C cni`). Runtimes exec it from their CNI bin directory.
 */
export const CNI_PLUGIN_BINARY = fileURLToPath(new URL("../../cni/build/clustermesh-cni", import.meta.url));

/** The binary's path, or an error that says how to build it. */
export function cniPluginBinary(): string {
  if (!existsSync(CNI_PLUGIN_BINARY)) {
    throw new Error(
      `the CNI plugin is not built (${CNI_PLUGIN_BINARY}): run make -C cni (or npm run bootstrap)`,
    );
  }
  return CNI_PLUGIN_BINARY;
}
