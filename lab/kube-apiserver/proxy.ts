/**
 * pods/{log,exec,attach,portforward}: forwarded to the kubelet of the pod's node, same path and query,
 * authenticated with the API server's kubelet-client certificate. Upgrades (WebSocket for
 * `v5.channel.k8s.io`, SPDY) become a raw bidirectional byte pipe; `log?follow=true` streams.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { Duplex } from "node:stream";
import { type ApiError, badRequest, internalError, notFound } from "./errors.js";
import type { ResourceType } from "./registry.js";
import type { ObjectStore } from "./storage.js";

export interface KubeletClientTls {
  cert: string;
  key: string;
  /** CA of the kubelets' serving certificates; without it they are not verified (as kube-apiserver). */
  ca?: string;
}

export interface KubeletTarget {
  host: string;
  port: number;
}

export async function kubeletTargetOf(
  store: ObjectStore,
  pods: ResourceType,
  nodes: ResourceType,
  namespace: string,
  podName: string,
): Promise<KubeletTarget> {
  const pod = await store.get(pods, namespace, podName);
  if (!pod) throw notFound(pods, podName);
  const nodeName = pod.spec?.nodeName;
  if (!nodeName) throw badRequest(`pod ${podName} does not have a host assigned`);
  const node = await store.get(nodes, undefined, nodeName);
  if (!node) throw notFound(nodes, nodeName);
  const addresses = (node.status?.addresses ?? []) as { type: string; address: string }[];
  const address =
    addresses.find((a) => a.type === "InternalIP") ?? addresses.find((a) => a.type === "ExternalIP");
  if (!address) throw badRequest(`node ${nodeName} has no InternalIP address to reach its kubelet`);
  const port = Number(node.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 10250);
  return { host: address.address, port };
}

const HOP_BY_HOP_DROPPED = new Set([
  "authorization",
  "host",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
]);

function forwardedHeaders(
  req: IncomingMessage,
  target: KubeletTarget,
  keepUpgrade: boolean,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_DROPPED.has(lower)) continue;
    if (!keepUpgrade && (lower === "connection" || lower === "upgrade")) continue;
    if (value !== undefined) headers[name] = value;
  }
  headers.host = target.host.includes(":")
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
  return headers;
}

function requestOptions(
  req: IncomingMessage,
  target: KubeletTarget,
  tls: KubeletClientTls,
  keepUpgrade: boolean,
): RequestOptions {
  return {
    host: target.host,
    port: target.port,
    method: req.method,
    path: req.url,
    headers: forwardedHeaders(req, target, keepUpgrade),
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    rejectUnauthorized: tls.ca !== undefined,
    agent: false,
  };
}

function kubeletUnreachable(target: KubeletTarget, error: Error): ApiError {
  return internalError(`error dialing kubelet at ${target.host}:${target.port}: ${error.message}`, {
    cause: error,
  });
}

/** A plain request (logs, also non-upgraded exec attempts): status, headers and a streamed body. */
export function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  target: KubeletTarget,
  tls: KubeletClientTls,
  onError: (error: ApiError) => void,
): void {
  const upstream = httpsRequest(requestOptions(req, target, tls, false), (answer) => {
    const headers = { ...answer.headers };
    delete headers.connection;
    delete headers["transfer-encoding"];
    res.writeHead(answer.statusCode ?? 502, headers);
    res.flushHeaders();
    answer.pipe(res);
    res.on("close", () => answer.destroy());
  });
  upstream.on("error", (error) => {
    if (res.headersSent) res.destroy();
    else onError(kubeletUnreachable(target, error));
  });
  req.pipe(upstream);
}

function rawHead(statusCode: number, statusMessage: string, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${statusCode} ${statusMessage}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** An Upgrade request (exec/attach/portforward): the kubelet's 101 and then bytes both ways. */
export function proxyUpgrade(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: KubeletTarget,
  tls: KubeletClientTls,
  onError: (error: ApiError) => void,
): void {
  const upstream = httpsRequest(requestOptions(req, target, tls, true));
  upstream.on("upgrade", (answer, kubelet, kubeletHead) => {
    client.write(
      rawHead(answer.statusCode ?? 101, answer.statusMessage ?? "Switching Protocols", answer.rawHeaders),
    );
    if (kubeletHead.length > 0) client.write(kubeletHead);
    if (head.length > 0) kubelet.write(head);
    kubelet.pipe(client);
    client.pipe(kubelet);
    const closeBoth = () => {
      kubelet.destroy();
      client.destroy();
    };
    kubelet.on("error", closeBoth);
    client.on("error", closeBoth);
    kubelet.on("close", () => client.end());
    client.on("close", () => kubelet.destroy());
  });
  upstream.on("response", (answer) => {
    // The kubelet refused to upgrade: relay its answer as is and close.
    const chunks: Buffer[] = [];
    answer.on("data", (chunk: Buffer) => chunks.push(chunk));
    answer.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers = answer.rawHeaders.filter((_, i, all) => {
        const name = (i % 2 === 0 ? all[i] : all[i - 1]).toLowerCase();
        return name !== "transfer-encoding" && name !== "connection" && name !== "content-length";
      });
      client.write(
        rawHead(answer.statusCode ?? 502, answer.statusMessage ?? "", [
          ...headers,
          "Content-Length",
          String(body.length),
          "Connection",
          "close",
        ]),
      );
      client.end(body);
    });
  });
  upstream.on("error", (error) => onError(kubeletUnreachable(target, error)));
  upstream.end();
}
