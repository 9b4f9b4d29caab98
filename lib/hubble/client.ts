/** A client of Hubble's observer.Observer (ours or Cilium's): flows as a stream, status, nodes. */
import * as grpc from "@grpc/grpc-js";
import type { HubbleFlow, Timestamp } from "./flow.js";
import { loadHubbleApi } from "./proto.js";
import type { GetFlowsRequestMessage } from "./request.js";

export interface GetFlowsResponse {
  flow?: HubbleFlow;
  lost_events?: { source: string; num_events_lost: string };
  node_status?: { state_change: string; node_names?: string[]; message?: string };
  node_name?: string;
  time?: Timestamp;
}

export interface ServerStatus {
  num_flows?: string;
  max_flows?: string;
  seen_flows?: string;
  uptime_ns?: string;
  num_connected_nodes?: { value: number };
  num_unavailable_nodes?: { value: number };
  unavailable_nodes?: string[];
  version?: string;
  flows_rate?: number;
}

export interface HubbleNode {
  name: string;
  version?: string;
  address?: string;
  state?: string;
  num_flows?: string;
  seen_flows?: string;
}

export interface ClientTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** the name the server's certificate is checked for (default: the target's host) */
  serverName?: string;
}

/** The agent's observer socket, beside its agent socket (where `meshctl observe` looks for it). */
export const HUBBLE_SOCKET_NAME = "hubble.sock";

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export class HubbleClient {
  private constructor(
    private readonly client: RawClient,
    private readonly metadata: grpc.Metadata,
  ) {}

  /** target: "unix:/path/to/hubble.sock" or "host:port"; metadata: sent with every call */
  static connect(target: string, tls?: ClientTls, metadata: Record<string, string> = {}): HubbleClient {
    const { ObserverClient } = loadHubbleApi();
    const credentials = tls
      ? grpc.credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null)
      : grpc.credentials.createInsecure();
    const options = tls?.serverName ? { "grpc.ssl_target_name_override": tls.serverName } : {};
    const callMetadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) callMetadata.set(key, value);
    return new HubbleClient(
      new ObserverClient(target, credentials, options) as unknown as RawClient,
      callMetadata,
    );
  }

  /** Streams the responses; resolves when the server ends the stream (or cancel() is called). */
  getFlows(
    request: GetFlowsRequestMessage,
    onResponse: (response: GetFlowsResponse) => void,
    deadlineMs?: number,
  ): {
    done: Promise<void>;
    cancel: () => void;
  } {
    const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
    const call = this.client.GetFlows(
      request,
      this.metadata,
      options,
    ) as grpc.ClientReadableStream<GetFlowsResponse>;
    let cancelled = false;
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", onResponse);
      call.on("end", resolve);
      call.on("error", (error: grpc.ServiceError) => {
        if (cancelled && error.code === grpc.status.CANCELLED) resolve();
        else reject(error);
      });
    });
    return {
      done,
      cancel: () => {
        cancelled = true;
        call.cancel();
      },
    };
  }

  /** Every flow the request selects (do not use with follow); deadlineMs: for the whole stream. */
  async flows(request: GetFlowsRequestMessage, deadlineMs?: number): Promise<GetFlowsResponse[]> {
    const responses: GetFlowsResponse[] = [];
    await this.getFlows(request, (response) => responses.push(response), deadlineMs).done;
    return responses;
  }

  serverStatus(deadlineMs = 5000): Promise<ServerStatus> {
    return this.unary("ServerStatus", {}, deadlineMs) as Promise<ServerStatus>;
  }

  async nodes(deadlineMs = 5000): Promise<HubbleNode[]> {
    const response = (await this.unary("GetNodes", {}, deadlineMs)) as { nodes?: HubbleNode[] };
    return response.nodes ?? [];
  }

  private unary(method: string, request: unknown, deadlineMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.client[method](
        request,
        this.metadata,
        { deadline: Date.now() + deadlineMs },
        (error: unknown, response: unknown) => (error ? reject(error) : resolve(response)),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
