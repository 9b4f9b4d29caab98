/**
 * HTTP endpoints: /readyz (200 "Ready" once every kind is synced, else 500 "NotReady"), /healthz,
 * /metrics, and in KVStoreMesh mode /v1/cluster (the cached remotes, like Cilium's kvstoremesh API).
 */
import { createServer, type Server } from "node:http";
import { KVSTOREMESH_STATUS_PATH } from "../lib/api/kvstoremesh-status.js";
import { METRICS_CONTENT_TYPE } from "../lib/metrics/registry.js";

export interface HealthSource {
  readiness(): { ready: boolean; synced: Record<string, boolean> };
  healthy(): { ok: boolean; detail: string };
  metrics(): Promise<string>;
  /** KVStoreMesh mode: the remote clusters' status (JSON array); absent = 404. */
  clusters?: () => unknown[];
}

export async function startHealthServer(
  address: string,
  source: HealthSource,
): Promise<{ server: Server; url: string }> {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(colon + 1));
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/readyz") {
      const { ready, synced } = source.readiness();
      response.writeHead(ready ? 200 : 500, { "content-type": "text/plain" });
      const pending = Object.entries(synced)
        .filter(([, done]) => !done)
        .map(([kind]) => kind);
      response.end(
        ready ? "Ready" : `NotReady${pending.length ? `: waiting for ${pending.join(", ")}` : ""}`,
      );
    } else if (path === "/healthz") {
      const { ok, detail } = source.healthy();
      response.writeHead(ok ? 200 : 500, { "content-type": "text/plain" });
      response.end(detail);
    } else if (path === "/metrics") {
      source.metrics().then(
        (body) => {
          response.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
          response.end(body);
        },
        (error: unknown) => {
          response.writeHead(500, { "content-type": "text/plain" });
          response.end(`metrics: ${(error as Error).message}`);
        },
      );
    } else if (path === KVSTOREMESH_STATUS_PATH && source.clusters) {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(source.clusters()));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const boundPort = typeof bound === "object" && bound ? bound.port : port;
  return { server, url: `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}` };
}
