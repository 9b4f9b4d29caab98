/** The agent's HTTP endpoint for Prometheus (GET /metrics) and the kubelet's probe (GET /healthz). */
import { createServer, type Server } from "node:http";
import { METRICS_CONTENT_TYPE, type MetricsRegistry } from "../../lib/metrics/registry.js";

export async function serveMetrics(
  address: { host: string; port: number },
  metrics: MetricsRegistry,
  ready: () => boolean,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === "/metrics" || req.url?.startsWith("/metrics?")) {
      metrics.render().then(
        (body) => {
          res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
          res.end(body);
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`metrics: ${(error as Error).message}`);
        },
      );
    } else if (req.url === "/healthz") {
      res.writeHead(ready() ? 200 : 503);
      res.end(ready() ? "ok" : "starting");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => resolve());
  });
  return server;
}
