/**
 * A Hubble relay: serves observer.Observer by asking every peer (agents' observers, or other
 * clusters' relays over mutual TLS) and merging. Like Cilium's hubble-relay
 * (https://github.com/cilium/cilium/tree/v1.18.4/hubble-relay): a peer that cannot be reached does
 * not fail the request; the rest are served, and the missing ones are named — as a NodeStatusEvent
 * (NODE_UNAVAILABLE) in GetFlows, in ServerStatus' unavailable_nodes, and as NODE_UNAVAILABLE in
 * GetNodes. Without follow, flows are merged by time and a count means that many overall
 * (relay-merge.ts); with follow, the stored flows come first, merged the same way, then new flows
 * as they come, and a client that stops reading loses flows (counted in a LostEvent) rather than
 * stalling peers.
 */
import * as grpc from "@grpc/grpc-js";
import { type ClientTls, type GetFlowsResponse, HubbleClient, type ServerStatus } from "./client.js";
import { FlowFilterError } from "./filter.js";
import { nsToTimestamp } from "./flow.js";
import { healthImplementation, healthService } from "./health.js";
import { loadHubbleApi } from "./proto.js";
import { mergeFlowResponses } from "./relay-merge.js";
import { type FlowsRequestPlan, type GetFlowsRequestMessage, planFlowsRequest } from "./request.js";

export interface RelayPeer {
  /** shown in unavailable_nodes: a node name, or "<cluster>/relay" for another cluster's relay */
  name: string;
  /** an agent's observer (default), or another cluster's relay: its own nodes are shown then */
  kind?: "node" | "relay";
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
  /**
   * Also serve here, with mutual TLS, for other clusters' relays and for clients outside the
   * cluster (meshctl observe). A relay asks another relay with the RELAY_HOP_HEADER and is answered
   * from that relay's own nodes only, so two relays merging each other never ask each other in a loop.
   */
  mesh?: { listenAddress: string; tls: { ca: Buffer; cert: Buffer; key: Buffer } };
  /** how long a peer may take to answer a unary call */
  peerTimeoutMs?: number;
  /** how long a peer may take to send every flow of a GetFlows without follow */
  flowsTimeoutMs?: number;
}

/** Set by a relay on its calls to other relays: "answer from your own nodes only". */
export const RELAY_HOP_HEADER = "x-clustermesh-relay-hop";

type PeerList = (call: { metadata: grpc.Metadata }) => readonly RelayPeer[];

const bindAddress = (address: string) => (address.startsWith(":") ? `0.0.0.0${address}` : address);

function serverCredentials(tls: RelayOptions["tls"]): grpc.ServerCredentials {
  return tls
    ? grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true)
    : grpc.ServerCredentials.createInsecure();
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(bindAddress(address), credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
}

const now = () => nsToTimestamp(BigInt(Date.now()) * 1_000_000n);

/** new flows held per follower while the stored ones are fetched (more are counted as lost) */
const MAX_HELD_RESPONSES = 4096;

export class HubbleRelay {
  private readonly clients = new Map<string, { key: string; client: HubbleClient }>();
  private readonly startedAt = process.hrtime.bigint();

  private readonly servers: grpc.Server[] = [];
  /** the port of the mesh listener, when there is one */
  meshPort = 0;

  private constructor(
    private readonly options: RelayOptions,
    readonly port: number,
  ) {}

  static async start(options: RelayOptions): Promise<HubbleRelay> {
    const main = new grpc.Server();
    const port = await bind(main, options.listenAddress, serverCredentials(options.tls));
    const relay = new HubbleRelay(options, port);
    const peers: PeerList = (call) =>
      call.metadata.get(RELAY_HOP_HEADER).length > 0
        ? options.peers().filter((peer) => (peer.kind ?? "node") === "node")
        : options.peers();
    relay.serve(main, peers);
    if (options.mesh) {
      const mesh = new grpc.Server();
      try {
        relay.meshPort = await bind(mesh, options.mesh.listenAddress, serverCredentials(options.mesh.tls));
      } catch (error) {
        main.forceShutdown();
        throw error;
      }
      relay.serve(mesh, peers);
    }
    return relay;
  }

  private serve(server: grpc.Server, listPeers: PeerList): void {
    const peers: PeerList = (call) => {
      this.prune();
      return listPeers(call);
    };
    const api = loadHubbleApi();
    const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
      callback({ code: grpc.status.UNIMPLEMENTED, details: "not implemented by this relay" }, null);
    server.addService(api.observerService, {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>) =>
        this.getFlows(call, peers(call)),
      ServerStatus: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.serverStatus(peers(call)).then(
          (status) => callback(null, status),
          (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }, null),
        );
      },
      GetNodes: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.nodes(peers(call)).then(
          (nodes) => callback(null, { nodes }),
          (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }, null),
        );
      },
      GetAgentEvents: unimplemented,
      GetDebugEvents: unimplemented,
      GetNamespaces: unimplemented,
    });
    server.addService(healthService, healthImplementation);
    this.servers.push(server);
  }

  /** A client per peer, replaced when its target or TLS changes. */
  private client(peer: RelayPeer): HubbleClient {
    const key = `${peer.kind ?? "node"}|${peer.target}|${peer.tls ? "tls" : ""}`;
    const existing = this.clients.get(peer.name);
    if (existing && existing.key === key) return existing.client;
    existing?.client.close();
    const client = HubbleClient.connect(
      peer.target,
      peer.tls,
      peer.kind === "relay" ? { [RELAY_HOP_HEADER]: "1" } : {},
    );
    this.clients.set(peer.name, { key, client });
    return client;
  }

  /** Closes the clients of peers that are gone (a Node deleted, a cluster disconnected). */
  private prune(): void {
    const current = new Set(this.options.peers().map((peer) => peer.name));
    for (const [name, { client }] of this.clients)
      if (!current.has(name)) {
        client.close();
        this.clients.delete(name);
      }
  }

  private get timeoutMs(): number {
    return this.options.peerTimeoutMs ?? 3000;
  }

  private async peerStatuses(
    peers: readonly RelayPeer[],
  ): Promise<Array<{ peer: RelayPeer; status?: ServerStatus; error?: string }>> {
    const timeout = this.timeoutMs;
    return Promise.all(
      peers.map(async (peer) => {
        try {
          return { peer, status: await this.client(peer).serverStatus(timeout) };
        } catch (error) {
          return { peer, error: (error as Error).message };
        }
      }),
    );
  }

  /** peers: every peer by default; a relay of another cluster counts as the nodes it reaches */
  async serverStatus(
    peers: readonly RelayPeer[] = this.options.peers(),
  ): Promise<ServerStatus & Record<string, unknown>> {
    const statuses = await this.peerStatuses(peers);
    const sum = (field: "num_flows" | "max_flows" | "seen_flows") =>
      statuses.reduce((total, { status }) => total + BigInt(status?.[field] ?? 0), 0n).toString();
    const unavailable: string[] = [];
    let connected = 0;
    for (const { peer, status } of statuses) {
      if (!status) unavailable.push(peer.name);
      else if (peer.kind === "relay") {
        connected += status.num_connected_nodes?.value ?? 0;
        unavailable.push(...(status.unavailable_nodes ?? []));
      } else connected++;
    }
    return {
      num_flows: sum("num_flows"),
      max_flows: sum("max_flows"),
      seen_flows: sum("seen_flows"),
      uptime_ns: (process.hrtime.bigint() - this.startedAt).toString(),
      num_connected_nodes: { value: connected },
      num_unavailable_nodes: { value: unavailable.length },
      unavailable_nodes: unavailable,
      version: this.options.version,
      flows_rate: statuses.reduce((total, { status }) => total + (status?.flows_rate ?? 0), 0),
    };
  }

  /** A relay of another cluster stands for its nodes; when it is down, for itself as unavailable. */
  async nodes(peers: readonly RelayPeer[] = this.options.peers()): Promise<Array<Record<string, unknown>>> {
    const relays = peers.filter((peer) => peer.kind === "relay");
    const remote = await Promise.all(
      relays.map(async (peer) => {
        try {
          return await this.client(peer).nodes(this.timeoutMs);
        } catch {
          return undefined;
        }
      }),
    );
    const reached = new Set(relays.filter((_, index) => remote[index] !== undefined));
    const statuses = await this.peerStatuses(peers.filter((peer) => peer.kind !== "relay"));
    for (const peer of relays) if (!reached.has(peer)) statuses.push({ peer, error: "unreachable" });
    const own = statuses.map(({ peer, status }) => ({
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
    return [...own, ...remote.flatMap((nodes) => (nodes ?? []) as unknown as Array<Record<string, unknown>>)];
  }

  /**
   * Every peer's stored flows for a request without follow, merged (relay-merge.ts: the last N
   * overall, not N per peer); peers that fail are returned by name. An invalid request rejects.
   */
  private async history(
    request: GetFlowsRequestMessage,
    peers: readonly RelayPeer[],
    plan: FlowsRequestPlan,
  ): Promise<{ responses: GetFlowsResponse[]; unavailable: string[] }> {
    const collected: GetFlowsResponse[] = [];
    const unavailable: string[] = [];
    await Promise.all(
      peers.map(async (peer) => {
        try {
          // a peer that hangs is cut at the deadline and named, never stalls the others
          collected.push(...(await this.client(peer).flows(request, this.options.flowsTimeoutMs ?? 10_000)));
        } catch (error) {
          // an invalid request is the client's, not a missing node: pass it on
          if ((error as grpc.ServiceError).code === grpc.status.INVALID_ARGUMENT) throw error;
          unavailable.push(peer.name);
        }
      }),
    );
    return { responses: mergeFlowResponses(collected, plan, (response) => response), unavailable };
  }

  private getFlows(
    call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>,
    peers: readonly RelayPeer[],
  ): void {
    let plan: FlowsRequestPlan;
    try {
      plan = planFlowsRequest(call.request);
    } catch (error) {
      const details = error instanceof FlowFilterError ? error.message : String(error);
      call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details });
      return;
    }
    const told = new Set<string>();
    const tellUnavailable = (names: readonly string[]) => {
      const fresh = names.filter((name) => !told.has(name));
      if (fresh.length === 0) return;
      for (const name of fresh) told.add(name);
      call.write({
        node_status: { state_change: "NODE_UNAVAILABLE", node_names: fresh, message: "" },
        time: now(),
      });
    };
    const failed = (error: grpc.ServiceError) =>
      call.emit("error", { code: error.code, details: error.details });
    if (!plan.follow) {
      this.history(call.request, peers, plan).then(({ responses, unavailable }) => {
        tellUnavailable(unavailable);
        for (const response of responses) call.write(response);
        call.end();
      }, failed);
      return;
    }
    this.follow(call, peers, plan, tellUnavailable, failed);
  }

  /**
   * Follow mode. With a count or a since, the stored flows come first, merged across peers like a
   * request without follow (the last N overall); the peers' streams are opened before that, asked
   * for new flows only, and what they send meanwhile is held and passed on after the stored flows,
   * less any flow (by uuid) the stored ones already had.
   */
  private follow(
    call: grpc.ServerWritableStream<GetFlowsRequestMessage, unknown>,
    peers: readonly RelayPeer[],
    plan: FlowsRequestPlan,
    tellUnavailable: (names: readonly string[]) => void,
    failed: (error: grpc.ServiceError) => void,
  ): void {
    const withHistory = plan.number !== undefined || plan.sinceNs !== undefined;
    let congested = false;
    let dropped = 0;
    const pass = (response: GetFlowsResponse) => {
      if (congested) {
        if (response.flow) dropped++;
        return;
      }
      if (!call.write(response)) congested = true;
    };
    const tellLost = () => {
      if (dropped === 0) return;
      congested = !call.write({
        lost_events: { source: "OBSERVER_EVENTS_QUEUE", num_events_lost: String(dropped) },
        time: now(),
      });
      dropped = 0;
    };
    call.on("drain", () => {
      congested = false;
      tellLost();
    });
    // held while the stored flows are fetched; bounded like a stuck client's buffer
    let held: GetFlowsResponse[] | undefined = withHistory ? [] : undefined;
    const live: GetFlowsRequestMessage = withHistory
      ? { ...call.request, number: 0, first: false, since: undefined }
      : call.request;
    const streams = peers.map((peer) => {
      const stream = this.client(peer).getFlows(live, (response) => {
        if (!held) return pass(response);
        if (held.length < MAX_HELD_RESPONSES) held.push(response);
        else if (response.flow) dropped++;
      });
      stream.done.catch(() => tellUnavailable([peer.name]));
      return stream;
    });
    const cancelAll = () => {
      for (const stream of streams) stream.cancel();
    };
    call.on("cancelled", cancelAll);
    call.on("close", cancelAll);
    call.on("error", cancelAll);
    if (!held) return;
    this.history({ ...call.request, follow: false }, peers, plan).then(({ responses, unavailable }) => {
      tellUnavailable(unavailable);
      const seen = new Set<string>();
      for (const response of responses) {
        if (response.flow?.uuid) seen.add(response.flow.uuid);
        pass(response);
      }
      const pending = held ?? [];
      held = undefined;
      for (const response of pending)
        if (!response.flow?.uuid || !seen.has(response.flow.uuid)) pass(response);
      if (!congested) tellLost();
    }, failed);
  }

  async close(): Promise<void> {
    for (const { client } of this.clients.values()) client.close();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.tryShutdown(() => resolve());
            setTimeout(() => server.forceShutdown(), 1000).unref();
          }),
      ),
    );
  }
}
