/**
 * The in-cluster half of `meshctl version --context C`: the image (and so the version) the agent
 * DaemonSet and the clustermesh-apiserver Deployment run, read from the cluster. Loaded only when
 * --context is given, so a bare `meshctl version` never loads client-node or reaches a network.
 */
import { meshWorkloadStatus, type WorkloadCounts } from "../../lib/install/workload-status.js";
import { kubeConfig } from "./clustermesh-actions.js";

export interface ServerVersion {
  component: string;
  installed: boolean;
  image?: string;
  /** The image's tag: what `npm run image` and the Dockerfile tag with the package version. */
  version?: string;
  ready: string;
}

function serverVersion(component: string, w: WorkloadCounts): ServerVersion {
  const tag = w.image?.match(/:([^:/@]+)(@|$)/)?.[1];
  return { component, installed: w.present, image: w.image, version: tag, ready: `${w.ready}/${w.desired}` };
}

export async function serverVersions(context: string, kubeconfig?: string): Promise<ServerVersion[]> {
  const status = await meshWorkloadStatus(kubeConfig(context, kubeconfig));
  return [
    serverVersion("clustermesh-agent", status.agent),
    serverVersion("clustermesh-apiserver", status.apiserver),
  ];
}

export function renderServers(context: string, servers: ServerVersion[]): string {
  return servers
    .map((s) =>
      s.installed
        ? `${s.component} (context ${context}): ${s.version ?? "unknown"}, image ${s.image}, ${s.ready} ready`
        : `${s.component} (context ${context}): not installed`,
    )
    .join("\n");
}
