import { startDaemon, stopProcess } from "../lib/process.js";
import { componentEnv } from "./control-plane.js";
import { LabJournal, type ProcessResource } from "./state.js";

export interface RestartOptions {
  name: string;
  role: string;
  node?: string;
  cluster?: string;
}

/**
 * Stops a lab component by PID and starts it again exactly as before (what the kubelet does when
 * a DaemonSet pod's container exits): for trying and testing restarts without disruption.
 */
export async function restartComponent(options: RestartOptions): Promise<ProcessResource[]> {
  const journal = LabJournal.open(options.name);
  if (!journal) throw new Error(`no lab named "${options.name}"`);
  const matches = journal.snapshot.resources.filter(
    (r): r is ProcessResource =>
      r.kind === "process" &&
      r.role === options.role &&
      (!options.node || r.node === options.node) &&
      (!options.cluster || r.cluster === options.cluster),
  );
  if (matches.length === 0) {
    throw new Error(
      `no ${options.role} process${options.node ? ` on node ${options.node}` : ""} in lab "${options.name}"`,
    );
  }
  const restarted: ProcessResource[] = [];
  for (const old of matches) {
    if (!old.argv)
      throw new Error(`${old.role} on ${old.node} was recorded without its command line; recreate the lab`);
    await stopProcess({ pid: old.pid, startTime: old.startTime });
    const ref = startDaemon({ argv: old.argv, netns: old.netns, logFile: old.logFile, env: componentEnv() });
    const next: ProcessResource = { ...old, pid: ref.pid, startTime: ref.startTime };
    journal.replace(old, next);
    restarted.push(next);
  }
  return restarted;
}
