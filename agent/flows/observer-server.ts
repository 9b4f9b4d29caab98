/**
 * Hubble's observer.Observer served by the agent (@grpc/grpc-js, protos from the Cilium module):
 * GetFlows (filters, number/first/last, since/until, follow), ServerStatus, GetNodes (this node).
 * A follower that stops reading never stalls the agent: while its stream's buffer is full, new
 * flows are dropped for it and counted, and it gets a LostEvent (HUBBLE_RING_BUFFER) once it drains.
 * Listens on a Unix socket and optionally a TCP address (Hubble's default port is 4244), with
 * mutual TLS when certificates are given. https://docs.cilium.io/en/stable/observability/hubble/
 */
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { FlowFilterError } from "../../lib/hubble/filter.js";
import { type HubbleFlow, nsToTimestamp, timestampToNs } from "../../lib/hubble/flow.js";
import { healthImplementation, healthService } from "../../lib/hubble/health.js";
import { loadHubbleApi } from "../../lib/hubble/proto.js";
import {
  type GetFlowsRequestMessage,
  inWindow,
  planFlowsRequest,
  selectHistory,
} from "../../lib/hubble/request.js";
import type { FlowStore } from "./store.js";

export interface ObserverTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface ObserverServerOptions {
  store: FlowStore;
  nodeName: string;
  version: string;
  /** unix socket path */
  socketPath?: string;
  /** host:port, e.g. ":4244" or "127.0.0.1:4244" */
  listenAddress?: string;
  tls?: ObserverTls;
  /** log sink for stream errors (never thrown into the agent) */
  onError?: (error: unknown) => void;
}

function response(flow: HubbleFlow, nodeName: string) {
  return { flow, node_name: nodeName, time: flow.time };
}

function nowTimestamp() {
  return nsToTimestamp(BigInt(Date.now()) * 1_000_000n);
}

function tcpAddress(address: string): string {
  return address.startsWith(":") ? `0.0.0.0${address}` : address;
}

export class ObserverServer {
  private constructor(
    private readonly server: grpc.Server,
    readonly addresses: string[],
  ) {}

  static async start(options: ObserverServerOptions): Promise<ObserverServer> {
    const api = loadHubbleApi();
    const server = new grpc.Server();
    const { store, nodeName } = options;
    const unimplemented = (_call: unknown, callback?: grpc.sendUnaryData<unknown>) => {
      const error = { code: grpc.status.UNIMPLEMENTED, details: "not implemented by this agent" };
      if (callback) callback(error, null);
      else (_call as grpc.ServerWritableStream<unknown, unknown>).emit("error", error);
    };
    server.addService(api.observerService, {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>) =>
        serveGetFlows(call, store, nodeName, options.onError),
      ServerStatus: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        const uptimeNs = process.hrtime.bigint() - store.startedAt;
        callback(null, {
          num_flows: String(store.size),
          max_flows: String(store.capacity),
          seen_flows: String(store.seen),
          uptime_ns: uptimeNs.toString(),
          version: options.version,
          flows_rate: store.seen / Math.max(1, Number(uptimeNs / 1_000_000_000n)),
        });
      },
      GetNodes: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        callback(null, {
          nodes: [
            {
              name: nodeName,
              version: options.version,
              address: options.listenAddress ?? options.socketPath ?? "",
              state: "NODE_CONNECTED",
              tls: { enabled: options.tls !== undefined, server_name: "" },
              uptime_ns: (process.hrtime.bigint() - store.startedAt).toString(),
              num_flows: String(store.size),
              max_flows: String(store.capacity),
              seen_flows: String(store.seen),
            },
          ],
        });
      },
      GetAgentEvents: unimplemented,
      GetDebugEvents: unimplemented,
      GetNamespaces: unimplemented,
    });
    server.addService(healthService, healthImplementation);
    const addresses: string[] = [];
    try {
      if (options.socketPath) {
        if (existsSync(options.socketPath)) unlinkSync(options.socketPath); // a previous run's socket
        await bind(server, `unix:${options.socketPath}`, grpc.ServerCredentials.createInsecure());
        chmodSync(options.socketPath, 0o600);
        addresses.push(`unix:${options.socketPath}`);
      }
      if (options.listenAddress) {
        const credentials = options.tls
          ? grpc.ServerCredentials.createSsl(
              options.tls.ca,
              [{ cert_chain: options.tls.cert, private_key: options.tls.key }],
              true,
            )
          : grpc.ServerCredentials.createInsecure();
        const port = await bind(server, tcpAddress(options.listenAddress), credentials);
        addresses.push(`${tcpAddress(options.listenAddress).replace(/:\d+$/, "")}:${port}`);
      }
    } catch (error) {
      server.forceShutdown();
      throw error;
    }
    return new ObserverServer(server, addresses);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      // followers never end on their own: cut them after a grace period
      setTimeout(() => this.server.forceShutdown(), 1000).unref();
    });
  }
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port))),
  );
}

function serveGetFlows(
  call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>,
  store: FlowStore,
  nodeName: string,
  onError?: (error: unknown) => void,
): void {
  let plan: ReturnType<typeof planFlowsRequest>;
  try {
    plan = planFlowsRequest(call.request);
  } catch (error) {
    const details = error instanceof FlowFilterError ? error.message : String(error);
    call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details });
    return;
  }
  call.on("error", (error) => onError?.(error));
  for (const flow of selectHistory(store.list(), plan)) call.write(response(flow, nodeName));
  if (!plan.follow) {
    call.end();
    return;
  }
  let congested = false;
  let dropped = 0;
  let datapathLost = 0;
  const sendLost = (source: string, count: number) =>
    call.write({
      lost_events: { source, num_events_lost: String(count) },
      node_name: nodeName,
      time: nowTimestamp(),
    });
  const unfollow = store.follow(
    (flow) => {
      if (plan.untilNs !== undefined && timestampToNs(flow.time) > plan.untilNs) {
        unfollow();
        call.end();
        return;
      }
      if (!inWindow(flow, plan) || !plan.filters.matches(flow)) return;
      if (congested) {
        dropped++;
        return;
      }
      if (!call.write(response(flow, nodeName))) congested = true;
    },
    (lost) => {
      datapathLost += lost;
      if (!congested) {
        congested = !sendLost("PERF_EVENT_RING_BUFFER", datapathLost);
        datapathLost = 0;
      }
    },
  );
  call.on("drain", () => {
    congested = false;
    if (dropped > 0) {
      congested = !sendLost("HUBBLE_RING_BUFFER", dropped);
      dropped = 0;
    }
  });
  call.on("cancelled", unfollow);
  call.on("close", unfollow);
  call.on("error", unfollow);
}
