import { isRunning } from "../lib/process.js";
import { listNetns } from "./network.js";
import { LabJournal } from "./state.js";

export interface LabStatus {
  name: string;
  createdAt: string;
  complete: boolean;
  bridge: { name: string; address: string };
  clusters: {
    name: string;
    id: number;
    podSubnets: string[];
    serviceSubnets: string[];
    etcdEndpoint: string;
    nodes: { name: string; role: string; ip: string; netns: string; netnsPresent: boolean }[];
  }[];
  processes: {
    role: string;
    cluster?: string;
    node?: string;
    pid: number;
    running: boolean;
    logFile: string;
  }[];
}

export async function labStatus(name: string): Promise<LabStatus | undefined> {
  const journal = LabJournal.open(name);
  if (!journal) return undefined;
  const { plan, createdAt, complete, resources } = journal.snapshot;
  const namespaces = new Set(await listNetns());
  return {
    name,
    createdAt,
    complete,
    bridge: { name: plan.bridge.name, address: plan.bridge.address },
    clusters: plan.clusters.map((cluster) => ({
      name: cluster.name,
      id: cluster.id,
      podSubnets: cluster.podSubnets,
      serviceSubnets: cluster.serviceSubnets,
      etcdEndpoint: cluster.etcdEndpoint,
      nodes: cluster.nodes.map((node) => ({
        name: node.name,
        role: node.role,
        ip: node.ip,
        netns: node.netns,
        netnsPresent: namespaces.has(node.netns),
      })),
    })),
    processes: resources.flatMap((r) =>
      r.kind === "process"
        ? [
            {
              role: r.role,
              cluster: r.cluster,
              node: r.node,
              pid: r.pid,
              running: isRunning({ pid: r.pid, startTime: r.startTime }),
              logFile: r.logFile,
            },
          ]
        : [],
    ),
  };
}
