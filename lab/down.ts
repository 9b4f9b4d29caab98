import { rmSync } from "node:fs";
import { stopProcess } from "../lib/process.js";
import { removeCgroupTree, unmountBpffs } from "./kernel-objects.js";
import { removeKubeconfigContext } from "./kubernetes/kubeconfig.js";
import { deleteBlackhole, deleteLink, deleteNetns, listNetns, netnsPids } from "./network.js";
import { LabJournal, type LabResource, labDir } from "./state.js";

export interface DownOptions {
  name: string;
  progress?: (line: string) => void;
}

/**
 * Removes everything a lab created, in reverse order of creation, from its on-disk record. It also
 * sweeps what a crashed component may have created without a record: namespaces carrying the lab's
 * prefix (pods) and processes inside them or inside the lab's cgroups.
 */
export async function labDown(options: DownOptions): Promise<boolean> {
  const say = options.progress ?? (() => {});
  const journal = LabJournal.open(options.name);
  const resources = journal ? [...journal.snapshot.resources].reverse() : [];

  const processes = resources.filter(
    (r): r is Extract<LabResource, { kind: "process" }> => r.kind === "process",
  );
  await Promise.all(processes.map((p) => stopProcess({ pid: p.pid, startTime: p.startTime })));
  if (processes.length) say(`Stopped ${processes.length} processes`);

  // Deleting a namespace frees its veth peers asynchronously; deleting the bridge-side ends first
  // makes their removal immediate and certain.
  for (const node of journal?.snapshot.plan.clusters.flatMap((c) => c.nodes) ?? []) {
    await deleteLink(node.hostInterface);
  }

  const prefix = `${options.name}-`;
  const recordedNetns = resources.flatMap((r) => (r.kind === "netns" ? [r.name] : []));
  const namespaces = [
    ...new Set([...(await listNetns()).filter((ns) => ns.startsWith(prefix)), ...recordedNetns]),
  ];
  for (const ns of namespaces) {
    for (const pid of await netnsPids(ns)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (error) {
        // ESRCH: exited between listing and killing; anything else (EPERM) must not pass silently
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    }
    await deleteNetns(ns);
  }
  if (namespaces.length) say(`Deleted ${namespaces.length} network namespaces`);

  for (const resource of resources) {
    switch (resource.kind) {
      case "cgroup":
        await removeCgroupTree(resource.path);
        break;
      case "bpffs":
        await unmountBpffs(resource.path);
        break;
      case "link":
        await deleteLink(resource.name);
        break;
      case "blackhole-route":
        await deleteBlackhole(resource.prefix);
        break;
      case "kubeconfig-context":
        removeKubeconfigContext(resource.path, resource.context);
        break;
      case "dir":
        rmSync(resource.path, { recursive: true, force: true });
        break;
      default:
        break;
    }
  }
  rmSync(labDir(options.name), { recursive: true, force: true });
  if (!journal && namespaces.length === 0) return false;
  say(`Lab ${options.name} removed`);
  return true;
}
