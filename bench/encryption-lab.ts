/**
 * Pod-to-pod TCP throughput across clusters in the lab, plain vs WireGuard vs IPsec, one lab per mode
 * in one run, as a table with ratios to plain (issue 7). Each lab: two clusters connected into a
 * mesh, an iperf3 server pod in cluster 2 and a client pod in cluster 1.
 *
 *   node dist/bench/encryption-lab.js [seconds per measurement, default 5]
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../lib/process.js";
import { kubectl, type LabFixture, labFixture, labUpArgs, MESHCTL } from "../testing/lab-fixture.js";

const MODES = ["none", "wireguard", "ipsec"] as const;
const seconds = Number(process.argv[2] ?? 5);

function meshctl(fixture: LabFixture, args: string[]): void {
  const result = spawnSync(process.execPath, [MESHCTL, ...args], {
    encoding: "utf8",
    env: fixture.env,
    timeout: 300_000,
  });
  if (result.status !== 0) throw new Error(`meshctl ${args.join(" ")}: ${result.stderr}`);
}

function k(fixture: LabFixture, cluster: string, args: string[]): string {
  const result = kubectl(fixture, cluster, args);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function measure(mode: (typeof MODES)[number]): Promise<number> {
  const fixture = await labFixture([{ workers: 1 }, { workers: 0 }]);
  try {
    meshctl(fixture, [...labUpArgs(fixture), "--encryption", mode]);
    const manifests: [string, string][] = [
      [
        "c1",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: bench}\nspec:\n  nodeName: c1-worker\n  containers: [{name: client, image: clustermesh/client}]\n",
      ],
      [
        "c2",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: server, namespace: bench}\nspec:\n  nodeName: c2-control-plane\n  containers: [{name: iperf, image: iperf3, command: [iperf3, -s]}]\n",
      ],
    ];
    for (const [cluster, manifest] of manifests) {
      const file = join(fixture.dir, `${cluster}.yaml`);
      writeFileSync(file, manifest);
      k(fixture, cluster, ["apply", "-f", file]);
    }
    meshctl(fixture, [
      "clustermesh",
      "connect",
      "--context",
      `${fixture.name}-c1`,
      "--destination-context",
      `${fixture.name}-c2`,
    ]);
    const serverIp = await waitFor(
      "the iperf3 server pod",
      () =>
        JSON.parse(k(fixture, "c2", ["-n", "bench", "get", "pod", "server", "-o", "json"])).status.podIP as
          | string
          | undefined,
      { timeoutMs: 180_000, intervalMs: 1_000 },
    );
    // Reachable across clusters once the mesh (and, with encryption, the peers) are up.
    await waitFor(
      "the server reachable across clusters",
      () =>
        kubectl(fixture, "c1", [
          "-n",
          "bench",
          "exec",
          "client",
          "--",
          "sh",
          "-c",
          `iperf3 -c ${serverIp} -t 1 -J >/dev/null`,
        ]).status === 0,
      { timeoutMs: 180_000, intervalMs: 2_000 },
    );
    const out = k(fixture, "c1", [
      "-n",
      "bench",
      "exec",
      "client",
      "--",
      "iperf3",
      "-c",
      serverIp,
      "-t",
      String(seconds),
      "-J",
    ]);
    return JSON.parse(out).end.sum_received.bits_per_second / 1e6;
  } finally {
    spawnSync(process.execPath, [MESHCTL, "lab", "down", "--name", fixture.name], {
      env: fixture.env,
      timeout: 180_000,
    });
    fixture.cleanup();
  }
}

const results: [string, number][] = [];
for (const mode of MODES) {
  process.stderr.write(`measuring ${mode} …\n`);
  results.push([mode, await measure(mode)]);
}
const plain = results[0][1];
process.stdout.write(
  `\nPod to pod across clusters, iperf3 TCP ${seconds} s (load average ${(await import("node:os")).loadavg()[0].toFixed(1)})\n\n`,
);
process.stdout.write("| mode | Mbit/s | ratio to plain |\n|---|---|---|\n");
for (const [mode, mbits] of results)
  process.stdout.write(`| ${mode} | ${mbits.toFixed(0)} | ${(mbits / plain).toFixed(3)} |\n`);
process.stdout.write(
  "\nwireguard-go and strongSwan's userspace ESP run in user space on this machine (no kernel WireGuard/ESP): expect a large drop against plain VXLAN.\n",
);
