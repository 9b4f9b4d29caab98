/**
 * A Hubble relay: serves observer.Observer by asking every peer (agents' observers, or other
 * clusters' relays over mutual TLS) and merging. Like Cilium's hubble-relay
 * (https://github.com/cilium/cilium/tree/v1.18.4/hubble-relay): a peer that cannot be reached does
 * not fail the request; the rest are served, and the missing ones are named — as a NodeStatusEvent
 * (NODE_UNAVAILABLE) in GetFlows, in ServerStatus' unavailable_nodes, and as NODE_UNAVAILABLE in
 * GetNodes. Without follow, flows are merged by time; with follow they are passed on as they come,
 * and a client that stops reading loses flows (counted in a LostEvent) rather than stalling peers.
 */
import * as grpc from "@grpc/grpc-js";
import { type ClientTls, type GetFlowsResponse, HubbleClient, type ServerStatus } from "./client.js";
import { FlowFilterError } from "./filter.js";
import { nsToTimestamp, timestampToNs } from "./flow.js";
import { healthImplementation, healthService } from "./health.js";
import { loadHubbleApi } from "./proto.js";
import { type GetFlowsRequestMessage, planFlowsRequest } from "./request.js";

export interface RelayPeer {
  /** shown in unavailable_nodes: a node name, or "<cluster>/relay" for another cluster's relay */
  name: string;
  /** host:port or unix:/path */
  target: string;
  tls?: ClientTls;
}

export interface RelayOptions {
  peers: () => readonly RelayPeer[];
  /** host:port; ":4245" is Hubble relay's default */
  listenAddress: string;
  version: string;
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  /** how long a peer may take to answer a unary call */
  peerTimeoutMs?: number;
}

const now = () => nsToTimestamp(BigInt(Date.now()) * 1_000_000n);

export class HubbleRelay {
  private readonly clients = new Map<string, { key: string; client: HubbleClient }>();
  private readonly startedAt = process.hrtime.bigint();

  private constructor(
    private readonly options: RelayOptions,
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(options: RelayOptions): Promise<HubbleRelay> {
    const api = loadHubbleApi();
    const server = new grpc.Server();
    const credentials = options.tls
      ? grpc.ServerCredentials.createSsl(
          options.tls.ca,
          [{ cert_chain: options.tls.cert, private_key: options.tls.key }],
          true,
        )
      : grpc.ServerCredentials.createInsecure();
    const address = options.listenAddress.startsWith(":")
      ? `0.0.0.0${options.listenAddress}`
      : options.listenAddress;
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    const relay = new HubbleRelay(options, server, port);
    const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: "not implemented by this relay" }, null);
    server.addService(api.observerService, {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>) => relay.getFlows(call),
      ServerStatus: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        relay.serverStatus().then(
          (status) => callback(null, status),
          (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }, null),
        );
      },
      GetNodes: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        relay.nodes().then(
          (nodes) => callback(null, { nodes }),
          (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }, null),
        );
      },
      GetAgentEvents: unimplemented,
      GetDebugEvents: unimplemented,
      GetNamespaces: unimplemented,
    });
    server.addService(healthService, healthImplementation);
    return relay;
  }

  /** A client per peer, replaced when its target or TLS changes. */
  private client(peer: RelayPeer): HubbleClient {
    const key = `${peer.target}|${peer.tls ? "tls" : ""}`;
    const existing = this.clients.get(peer.name);
    if (existing && existing.key === key) return existing.client;
    existing?.client.close();
    const client = HubbleClient.connect(peer.target, peer.tls);
    this.clients.set(peer.name, { key, client });
    return client;
  }

  private async peerStatuses(): Promise<Array<{ peer: RelayPeer; status?: ServerStatus; error?: string }>> {
    const timeout = this.options.peerTimeoutMs ?? 3000;
    return Promise.all(
      this.options.peers().map(async (peer) => {
        try {
          return { peer, status: await this.client(peer).serverStatus(timeout) };
        } catch (error) {
          return { peer, error: (error as Error).message };
        }
      }),
    );
  }

  async serverStatus(): Promise<ServerStatus & Record<string, unknown>> {
    const statuses = await this.peerStatuses();
    const sum = (field: "num_flows" | "max_flows" | "seen_flows") =>
      statuses.reduce((total, { status }) => total + BigInt(status?.[field] ?? 0), 0n).toString();
    const unavailable = statuses.filter((entry) => !entry.status).map((entry) => entry.peer.name);
    return {
      num_flows: sum("num_flows"),
      max_flows: sum("max_flows"),
      seen_flows: sum("seen_flows"),
      uptime_ns: (process.hrtime.bigint() - this.startedAt).toString(),
      num_connected_nodes: { value: statuses.length - unavailable.length },
      num_unavailable_nodes: { value: unavailable.length },
      unavailable_nodes: unavailable,
      version: this.options.version,
      flows_rate: statuses.reduce((total, { status }) => total + (status?.flows_rate ?? 0), 0),
    };
  }

  async nodes(): Promise<Array<Record<string, unknown>>> {
    const statuses = await this.peerStatuses();
    return statuses.map(({ peer, status }) => ({
      name: peer.name,
      version: status?.version ?? "",
      address: peer.target,
      state: status ? "NODE_CONNECTED" : "NODE_UNAVAILABLE",
      tls: { enabled: peer.tls !== undefined, server_name: peer.tls?.serverName ?? "" },
      ...(status
        ? {
            uptime_ns: status.uptime_ns,
            num_flows: status.num_flows,
            max_flows: status.max_flows,
            seen_flows: status.seen_flows,
          }
        : {}),
    }));
  }

  private getFlows(call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>): void {
    let follow: boolean;
    try {
      follow = planFlowsRequest(call.request).follow;
    } catch (error) {
      const details = error instanceof FlowFilterError ? error.message : String(error);
      call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details });
      return;
    }
    const peers = this.options.peers();
    const unavailable: string[] = [];
    const tellUnavailable = () => {
      if (unavailable.length === 0) return;
      call.write({
        node_status: { state_change: "NODE_UNAVAILABLE", node_names: [...unavailable], message: "" },
        time: now(),
      });
      unavailable.length = 0;
    };
    if (!follow) {
      const collected: GetFlowsResponse[] = [];
      Promise.all(
        peers.map(async (peer) => {
          try {
            collected.push(...(await this.client(peer).flows(call.request)));
          } catch (error) {
            // an invalid request is the client's, not a missing node: pass it on
            if ((error as grpc.ServiceError).code === grpc.status.INVALID_ARGUMENT) throw error;
            unavailable.push(peer.name);
          }
        }),
      ).then(
        () => {
          tellUnavailable();
          const at = (response: GetFlowsResponse) => (response.time ? timestampToNs(response.time) : 0n);
          collected.sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0));
          for (const response of collected) call.write(response);
          call.end();
        },
        (error: grpc.ServiceError) => call.emit("error", { code: error.code, details: error.details }),
      );
      return;
    }
    let congested = false;
    let dropped = 0;
    call.on("drain", () => {
      congested = false;
      if (dropped > 0) {
        congested = !call.write({
          lost_events: { source: "OBSERVER_EVENTS_QUEUE", num_events_lost: String(dropped) },
          time: now(),
        });
        dropped = 0;
      }
    });
    const streams = peers.map((peer) => {
      const stream = this.client(peer).getFlows(call.request, (response) => {
        if (congested) {
          if (response.flow) dropped++;
          return;
        }
        if (!call.write(response)) congested = true;
      });
      stream.done.catch(() => {
        unavailable.push(peer.name);
        tellUnavailable();
      });
      return stream;
    });
    const cancelAll = () => {
      for (const stream of streams) stream.cancel();
    };
    call.on("cancelled", cancelAll);
    call.on("close", cancelAll);
    call.on("error", cancelAll);
  }

  close(): Promise<void> {
    for (const { client } of this.clients.values()) client.close();
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => this.server.forceShutdown(), 1000).unref();
    });
  }
}
