import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issueClientCert } from "../certs/authority.js";
import { loadBundle } from "../certs/store.js";
import { containerProcess, MESH_POD_ROLES, meshPods } from "../lab/mesh-pods.js";
import type { LabJournal } from "../lab/state.js";
import { run } from "../lib/exec.js";
import { ETCD_PORT } from "../lib/install/names.js";

/** What one clustermesh etcd serves: its clients' TCP connections, leases, watch streams, watchers. */
export interface EtcdSessions {
  cluster: string;
  connections: number;
  leases: number;
  watchStreams: number;
  watchers: number;
}

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : Number.NaN;
}

/**
 * Asked inside the etcd container's network namespace (127.0.0.1, as the clustermesh-apiserver
 * beside it asks), with a root client certificate from the lab's CA: connections established to
 * the client port (`ss`), live leases (`etcdctl lease list`), and etcd's own gauges of watch
 * streams and watchers (`/metrics`, etcd_debugging_mvcc_*).
 */
export async function etcdSessions(journal: LabJournal, cluster: string): Promise<EtcdSessions> {
  const [pod] = await meshPods(journal, cluster, MESH_POD_ROLES["clustermesh-etcd"]);
  const etcd = pod && containerProcess(journal, pod, "etcd");
  if (!etcd) throw new Error(`no running clustermesh etcd in ${cluster}`);
  const dir = mkdtempSync(join(tmpdir(), "mesh-scale-etcd-"));
  try {
    const ca = loadBundle(journal.path("pki"), "ca");
    const root = issueClientCert(ca, { commonName: "root" });
    const files = { ca: join(dir, "ca.crt"), cert: join(dir, "root.crt"), key: join(dir, "root.key") };
    writeFileSync(files.ca, ca.certPem);
    writeFileSync(files.cert, root.certPem);
    writeFileSync(files.key, root.keyPem, { mode: 0o600 });
    const inPod = (argv: string[]) => run(["nsenter", "-t", String(etcd.pid), "-n", ...argv]);
    const url = `https://127.0.0.1:${ETCD_PORT}`;
    const sockets = await inPod(["ss", "-Htn", "state", "established", `( sport = :${ETCD_PORT} )`]);
    const leases = await inPod([
      "etcdctl",
      `--endpoints=${url}`,
      `--cacert=${files.ca}`,
      `--cert=${files.cert}`,
      `--key=${files.key}`,
      "lease",
      "list",
    ]);
    const metrics = await inPod([
      "curl",
      "-sf",
      "--cacert",
      files.ca,
      "--cert",
      files.cert,
      "--key",
      files.key,
      `${url}/metrics`,
    ]);
    return {
      cluster,
      connections: sockets.split("\n").filter((l) => l.trim()).length,
      leases: Number(/found (\d+) leases/.exec(leases)?.[1] ?? Number.NaN),
      watchStreams: metric(metrics, "etcd_debugging_mvcc_watch_stream_total"),
      watchers: metric(metrics, "etcd_debugging_mvcc_watcher_total"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
