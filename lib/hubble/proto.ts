/**
 * Hubble's API (observer.Observer, flow.Flow, relay.NodeStatusEvent), loaded at run time from the
 * .proto files of the Cilium Go module the project pins (test/interop/cilium-v1.18/go.mod; the
 * bootstrap fetches it into the Go module cache). The files are not copied into the repository.
 * https://github.com/cilium/cilium/tree/v1.18.4/api/v1/observer
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** The Cilium module version whose protos we serve; proto.test.ts keeps it equal to the interop pin. */
export const CILIUM_MODULE_VERSION = "v1.18.4";

export class HubbleProtoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HubbleProtoError";
  }
}

/** The Go module cache: $GOMODCACHE, else $GOPATH/pkg/mod, else ~/go/pkg/mod (as `go env GOMODCACHE`). */
export function goModuleCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GOMODCACHE) return env.GOMODCACHE;
  const gopath = env.GOPATH?.split(":")[0];
  return join(gopath || join(env.HOME || homedir(), "go"), "pkg", "mod");
}

/** Where image/stage.sh puts the protos in the image: /opt/clustermesh/hubble-proto, beside dist/. */
const IMAGE_PROTO_ROOT = fileURLToPath(new URL("../../../hubble-proto", import.meta.url));

/**
 * Directory holding observer/, flow/, relay/ (the protos' import root): $CLUSTERMESH_HUBBLE_PROTO_ROOT,
 * else the image's copy, else the pinned module in the Go module cache (a checkout's build).
 */
export function hubbleProtoRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CLUSTERMESH_HUBBLE_PROTO_ROOT) return env.CLUSTERMESH_HUBBLE_PROTO_ROOT;
  if (existsSync(join(IMAGE_PROTO_ROOT, "observer", "observer.proto"))) return IMAGE_PROTO_ROOT;
  return join(goModuleCache(env), "github.com", "cilium", `cilium@${CILIUM_MODULE_VERSION}`, "api", "v1");
}

export interface HubbleApi {
  /** the observer.Observer service definition, for grpc.Server.addService */
  observerService: grpc.ServiceDefinition;
  /** a client constructor for observer.Observer */
  ObserverClient: grpc.ServiceClientConstructor;
  root: string;
}

let cached: HubbleApi | undefined;

export function loadHubbleApi(root = hubbleProtoRoot()): HubbleApi {
  if (cached && cached.root === root) return cached;
  const observerProto = join(root, "observer", "observer.proto");
  if (!existsSync(observerProto)) {
    throw new HubbleProtoError(
      `Hubble's protos are not at ${observerProto}: fetch the pinned Cilium module with ` +
        `\`cd test/interop/cilium-v1.18 && go mod download github.com/cilium/cilium\` ` +
        `(or set CLUSTERMESH_HUBBLE_PROTO_ROOT to a directory holding observer/, flow/ and relay/)`,
    );
  }
  let definition: protoLoader.PackageDefinition;
  try {
    definition = protoLoader.loadSync(observerProto, {
      includeDirs: [root],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
      oneofs: true,
    });
  } catch (error) {
    throw new HubbleProtoError(`loading ${observerProto}`, { cause: error });
  }
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    observer: { Observer: grpc.ServiceClientConstructor };
  };
  cached = {
    observerService: loaded.observer.Observer.service,
    ObserverClient: loaded.observer.Observer,
    root,
  };
  return cached;
}
