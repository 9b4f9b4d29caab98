/**
 * Endpoint records on disk (<state-dir>/endpoints/<id>.json), written before the kernel objects
 * are created and removed after they are gone, so a restarted agent knows every IP in use and
 * every veth it owns, whatever state a crash left them in.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface NamedPort {
  name: string;
  port: number;
  protocol: string;
}

export interface EndpointRecord {
  /** host-side interface name; also the endpoint id */
  id: string;
  containerId: string;
  ifname: string;
  netns: string;
  podNamespace: string;
  podName: string;
  podUid?: string;
  ip: string;
  hostMac: string;
  podMac: string;
  /** host-side ifindex once the link exists */
  ifindex?: number;
  identity: number;
  labels: string[];
  namedPorts: NamedPort[];
  /** "creating" until the ADD finished: a crash leaves it so, and the restarted agent tears it down */
  state: "creating" | "ready";
  createdAt: string;
}

export class EndpointStore {
  private readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, "endpoints");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  save(record: EndpointRecord): void {
    const file = join(this.dir, `${record.id}.json`);
    const temp = `${file}.tmp`;
    writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, file);
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
  }

  /** Every record; unreadable files are reported and skipped (never fatal). */
  loadAll(onBadFile: (file: string, error: Error) => void): EndpointRecord[] {
    if (!existsSync(this.dir)) return [];
    const records: EndpointRecord[] = [];
    for (const file of readdirSync(this.dir)) {
      if (!file.endsWith(".json")) continue;
      try {
        records.push(JSON.parse(readFileSync(join(this.dir, file), "utf8")) as EndpointRecord);
      } catch (error) {
        onBadFile(file, error as Error);
      }
    }
    return records;
  }
}
