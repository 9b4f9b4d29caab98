/**
 * The lab's Kubernetes API server: HTTPS, authentication, discovery, the REST verbs on every resource,
 * and the kubelet proxy. State lives in the cluster's etcd, so a restarted server carries on.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { Etcd3 } from "etcd3";
import { connectEtcd, type EtcdClientTls } from "../../lib/etcd/client.js";
import { type Logger, silentLogger } from "../../lib/log.js";
import { authenticate, type UserInfo } from "./auth.js";
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  coreApiVersions,
  openApiV3Document,
  openApiV3Index,
  versionInfo,
} from "./discovery.js";
import { ApiError, internalError, pathNotFound, unauthorized } from "./errors.js";
import { type ApiContext, createObject, handleResource, sendError, sendJson } from "./handlers.js";
import { parsePortRange, ServiceIpRange } from "./ipalloc.js";
import type { KubeObject } from "./objects.js";
import { parseApiPath } from "./paths.js";
import { type KubeletClientTls, kubeletTargetOf, proxyRequest, proxyUpgrade } from "./proxy.js";
import { PodReaper } from "./reaper.js";
import { type CrdObject, ResourceRegistry, type ResourceType } from "./registry.js";
import { ServiceAllocator } from "./services.js";
import { ObjectStore } from "./storage.js";

export interface KubeApiServerOptions {
  bindAddress: string;
  /** 0 picks a free port. */
  securePort: number;
  /** PEM of the serving certificate and key. */
  tls: { cert: string; key: string };
  /** PEM of the CA whose client certificates are accepted. */
  clientCa: string;
  /** Bearer tokens (see parseTokenFile). */
  tokens?: Map<string, UserInfo>;
  etcd: { endpoints: string[]; tls: EtcdClientTls; serverName?: string };
  etcdPrefix?: string;
  serviceClusterIpRange: string;
  serviceNodePortRange?: string;
  kubeletClient?: KubeletClientTls;
  clusterName?: string;
  /** What `/version` reports; kubectl's dispatcher picks its bundled kubectl from it. */
  kubernetesVersion?: string;
  /** The address the `default/kubernetes` Endpoints point at (defaults to bindAddress unless 0.0.0.0). */
  advertiseAddress?: string;
  bookmarkIntervalMs?: number;
  /**
   * Like kube-apiserver's --min-request-timeout: a watch without timeoutSeconds is closed after a
   * random time between this and twice this (clients then re-watch from their last version).
   */
  minRequestTimeoutSeconds?: number;
  log?: Logger;
}

export interface KubeApiServer {
  /** https://host:port */
  url: string;
  port: number;
  registry: ResourceRegistry;
  close(): Promise<void>;
}

const UPGRADE_SUBRESOURCES = new Set(["exec", "attach", "portforward"]);
const PUBLIC_PATHS = new Set(["/healthz", "/livez", "/readyz", "/version"]);

export async function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  const log = options.log ?? silentLogger();
  const ipRange = new ServiceIpRange(options.serviceClusterIpRange);
  const nodePorts = parsePortRange(options.serviceNodePortRange ?? "30000-32767");
  const etcd = connectEtcd({
    endpoints: options.etcd.endpoints,
    tls: options.etcd.tls,
    serverName: options.etcd.serverName,
  });
  const registry = new ResourceRegistry();
  const store = new ObjectStore(etcd, (options.etcdPrefix ?? "/registry").replace(/\/+$/, ""));
  const type = (group: string, resource: string) =>
    registry.lookup(group, group === "" ? "v1" : "v1", resource) as ResourceType;
  const pods = type("", "pods");
  const reaper = new PodReaper(store, pods, log);
  const ctx: ApiContext = {
    registry,
    store,
    services: new ServiceAllocator(store, type("", "services"), ipRange, nodePorts),
    log,
    bookmarkIntervalMs: options.bookmarkIntervalMs ?? 60_000,
    minRequestTimeoutSeconds: options.minRequestTimeoutSeconds ?? 1800,
    schedulePodRemoval: (pod) => reaper.schedule(pod),
  };
  const tokens = options.tokens ?? new Map<string, UserInfo>();
  const version = options.kubernetesVersion ?? "v1.31.0";
  let ready = false;

  try {
    const { items: crds } = await store.list(type("apiextensions.k8s.io", "customresourcedefinitions"));
    for (const crd of crds) registry.setCrd(crd as unknown as CrdObject);
    await reaper.start();
  } catch (error) {
    etcd.close();
    throw new Error(
      `cannot read the cluster state from etcd at ${options.etcd.endpoints.join(",")}: ${(error as Error).message}`,
      { cause: error },
    );
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "https://localhost");
    const pathname = url.pathname.replace(/\/+$/, "") || "/";
    if (PUBLIC_PATHS.has(pathname) || /^\/(healthz|livez|readyz)\//.test(pathname)) {
      if (pathname === "/version") return sendJson(res, 200, versionInfo(version));
      if (!ready && pathname.startsWith("/readyz")) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        return res.end("[-]etcd not ready\n");
      }
      res.writeHead(200, { "Content-Type": "text/plain" });
      return res.end("ok");
    }
    const user = authenticate(req, tokens);
    if (!user) throw unauthorized();
    log.debug({ method: req.method, url: req.url, user: user.name }, "request");
    if (pathname === "/openapi/v3") return sendJson(res, 200, openApiV3Index(registry));
    const openapi = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(pathname);
    if (openapi) {
      const doc = openapi[1]
        ? openApiV3Document(registry, "", openapi[1])
        : openApiV3Document(registry, openapi[2], openapi[3]);
      if (!doc) throw pathNotFound();
      return sendJson(res, 200, doc);
    }
    const parsed = parseApiPath(pathname);
    switch (parsed.kind) {
      case "root": {
        const host = req.headers.host ?? `${options.bindAddress}:${options.securePort}`;
        return sendJson(res, 200, parsed.legacy ? coreApiVersions(host) : apiGroupList(registry));
      }
      case "group": {
        const doc = apiGroup(registry, parsed.group);
        if (!doc) throw pathNotFound();
        return sendJson(res, 200, doc);
      }
      case "groupVersion": {
        const doc = apiResourceList(registry, parsed.group, parsed.version);
        if (!doc) throw pathNotFound();
        return sendJson(res, 200, doc);
      }
      case "resource": {
        const p = parsed.path;
        if (
          p.group === "" &&
          p.resource === "pods" &&
          p.subresource &&
          pods.kubeletProxied?.includes(p.subresource)
        ) {
          const target = await kubeletTargetOf(
            store,
            pods,
            type("", "nodes"),
            p.namespace ?? "",
            p.name ?? "",
          );
          if (!options.kubeletClient) throw internalError("the API server has no kubelet client certificate");
          return proxyRequest(req, res, target, options.kubeletClient, (error) => sendError(res, error));
        }
        return handleResource(ctx, req, res, p, url.searchParams);
      }
      default:
        throw pathNotFound();
    }
  };

  const handleUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const reject = (error: ApiError) => {
      const body = JSON.stringify(error.toStatus());
      socket.end(
        `HTTP/1.1 ${error.code} ${error.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    try {
      if (!authenticate(req, tokens)) throw unauthorized();
      const url = new URL(req.url ?? "/", "https://localhost");
      const parsed = parseApiPath(url.pathname);
      if (parsed.kind !== "resource") throw pathNotFound();
      const p = parsed.path;
      if (
        !(p.group === "" && p.resource === "pods" && p.subresource && UPGRADE_SUBRESOURCES.has(p.subresource))
      )
        throw pathNotFound();
      const target = await kubeletTargetOf(store, pods, type("", "nodes"), p.namespace ?? "", p.name ?? "");
      if (!options.kubeletClient) throw internalError("the API server has no kubelet client certificate");
      proxyUpgrade(req, socket, head, target, options.kubeletClient, reject);
    } catch (error) {
      reject(error instanceof ApiError ? error : internalError((error as Error).message, { cause: error }));
    }
  };

  const server: Server = createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      ca: options.clientCa,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      handle(req, res).catch((error) => {
        if (error instanceof ApiError) return sendError(res, error);
        log.error({ err: error, method: req.method, url: req.url }, "request failed");
        sendError(res, internalError((error as Error).message, { cause: error }));
      });
    },
  );
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    handleUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  // Watches are long-lived; Node's default request timeout (5 min) would cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  try {
    await bootstrap(ctx, ipRange, options);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.securePort, options.bindAddress, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    reaper.close();
    etcd.close();
    throw error;
  }
  ready = true;
  const port = (server.address() as AddressInfo).port;
  const host = options.bindAddress.includes(":") ? `[${options.bindAddress}]` : options.bindAddress;
  log.info({ url: `https://${host}:${port}`, cluster: options.clusterName }, "kube-apiserver listening");
  return {
    url: `https://${host}:${port}`,
    port,
    registry,
    close: async () => {
      ready = false;
      reaper.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      closeEtcd(etcd);
    },
  };
}

function closeEtcd(etcd: Etcd3): void {
  etcd.close();
}

/** The namespaces and the `default/kubernetes` Service every cluster starts with. */
async function bootstrap(
  ctx: ApiContext,
  ipRange: ServiceIpRange,
  options: KubeApiServerOptions,
): Promise<void> {
  const ensure = async (
    group: string,
    resource: string,
    namespace: string | undefined,
    object: KubeObject,
  ) => {
    const rt = ctx.registry.lookup(group, "v1", resource) as ResourceType;
    if (await ctx.store.get(rt, namespace, object.metadata.name ?? "")) return;
    try {
      await createObject(ctx, rt, namespace, object);
    } catch (error) {
      if (!(error instanceof ApiError && error.reason === "AlreadyExists")) throw error;
    }
  };
  for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
    await ensure("", "namespaces", undefined, { metadata: { name } });
  }
  const port = options.securePort || 6443;
  await ensure("", "services", "default", {
    metadata: { name: "kubernetes", labels: { component: "apiserver", provider: "kubernetes" } },
    spec: {
      type: "ClusterIP",
      clusterIP: ipRange.apiServerServiceIp,
      ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: port }],
      sessionAffinity: "None",
    },
  });
  const advertise =
    options.advertiseAddress ?? (options.bindAddress === "0.0.0.0" ? undefined : options.bindAddress);
  if (advertise) {
    await ensure("", "endpoints", "default", {
      metadata: { name: "kubernetes", labels: { "endpointslice.kubernetes.io/skip-mirror": "true" } },
      subsets: [{ addresses: [{ ip: advertise }], ports: [{ name: "https", port, protocol: "TCP" }] }],
    });
  }
}
