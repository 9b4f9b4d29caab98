import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LabPlan } from "./plan.js";

export type LabResource =
  | { kind: "dir"; path: string }
  | { kind: "netns"; name: string }
  | { kind: "link"; name: string }
  | { kind: "blackhole-route"; prefix: string }
  | { kind: "bpffs"; path: string }
  | { kind: "cgroup"; path: string }
  | {
      kind: "process";
      role: string;
      cluster?: string;
      node?: string;
      pid: number;
      startTime: string;
      logFile: string;
      /** How it was started, so `meshctl lab restart` can start it again the same way. */
      argv?: string[];
      netns?: string;
    }
  | { kind: "kubeconfig-context"; path: string; context: string };

export type ProcessResource = Extract<LabResource, { kind: "process" }>;

export interface LabState {
  name: string;
  createdAt: string;
  /** True once `lab up` finished; a lab that is not complete was interrupted. */
  complete: boolean;
  plan: LabPlan;
  /** In creation order; `lab down` undoes them in reverse. */
  resources: LabResource[];
}

/** Not under /run/clustermesh: that is a node's own directory of the agent (its socket), which a lab node's processes see in its place. */
export function labStateRoot(): string {
  return process.env.MESH_LAB_STATE_ROOT ?? "/run/clustermesh-lab";
}

export function labDir(name: string): string {
  return join(labStateRoot(), name);
}

export function listLabs(): string[] {
  const root = labStateRoot();
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((name) => existsSync(join(root, name, "state.json")));
}

/**
 * The on-disk record of what a lab created, written before each resource is created (so a crash
 * between the two leaves a record of something that may not exist — down tolerates that — never
 * something that exists without a record).
 */
export class LabJournal {
  private constructor(
    readonly dir: string,
    private state: LabState,
  ) {}

  static create(plan: LabPlan): LabJournal {
    const dir = labDir(plan.name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const journal = new LabJournal(dir, {
      name: plan.name,
      createdAt: new Date().toISOString(),
      complete: false,
      plan,
      resources: [],
    });
    journal.save();
    return journal;
  }

  static open(name: string): LabJournal | undefined {
    const dir = labDir(name);
    const file = join(dir, "state.json");
    if (!existsSync(file)) return undefined;
    return new LabJournal(dir, JSON.parse(readFileSync(file, "utf8")) as LabState);
  }

  get snapshot(): LabState {
    return this.state;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  record(resource: LabResource): void {
    this.state.resources.push(resource);
    this.save();
  }

  replace(old: LabResource, next: LabResource): void {
    this.state.resources = this.state.resources.map((r) => (r === old ? next : r));
    this.save();
  }

  /** Drops the record of a resource that has been removed (e.g. a process stopped for good). */
  forget(resource: LabResource): void {
    this.state.resources = this.state.resources.filter((r) => r !== resource);
    this.save();
  }

  markComplete(): void {
    this.state.complete = true;
    this.save();
  }

  private save(): void {
    const file = join(this.dir, "state.json");
    writeFileSync(`${file}.tmp`, `${JSON.stringify(this.state, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
}
