import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LabConfigError } from "./config-error.js";
import { type KindCluster, parseKindConfig } from "./kind-config.js";
import { type MeshFile, parseMeshFile } from "./mesh-file.js";

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new LabConfigError(file, "", code === "ENOENT" ? "file does not exist" : `cannot read: ${code}`);
  }
}

export interface LabInputs {
  clusters: KindCluster[];
  mesh: MeshFile;
}

/** Reads the kind configs and the mesh file (given, or `mesh.yaml` beside the first config). */
export function loadLabInputs(configFiles: string[], meshFile?: string): LabInputs {
  const clusters = configFiles.map((file) => parseKindConfig(file, readText(file)));
  const meshPath = meshFile ?? (configFiles[0] ? join(dirname(configFiles[0]), "mesh.yaml") : undefined);
  const mesh =
    meshPath && (meshFile || existsSync(meshPath))
      ? parseMeshFile(meshPath, readText(meshPath))
      : { clusterIds: new Map<string, number>() };
  return { clusters, mesh };
}

/** The mesh file given with generated clusters (`--clusters N --mesh FILE`); none: the defaults. */
export function loadMeshFile(meshFile: string | undefined): MeshFile {
  return meshFile ? parseMeshFile(meshFile, readText(meshFile)) : { clusterIds: new Map<string, number>() };
}
