import { parse, stringify } from "yaml";

/**
 * One connected cluster's entry of the remotes Secret: Cilium's etcd client config format
 * (`endpoints`, `trusted-ca-file`, `cert-file`, `key-file`). File names refer to keys of the
 * Secrets the agent reads, as Cilium's projected volume maps them: `common-etcd-client.*` is this
 * cluster's remote certificate, `<cluster>.etcd-client-ca.crt` a remote cluster's own CA.
 */
export interface RemoteClusterConfig {
  name: string;
  endpoints: string[];
  trustedCaFile: string;
  certFile: string;
  keyFile: string;
}

export const COMMON_CLIENT = {
  ca: "common-etcd-client-ca.crt",
  cert: "common-etcd-client.crt",
  key: "common-etcd-client.key",
} as const;

/**
 * This cluster's own client certificate for its local etcd (the clustermesh-apiserver-local-cert
 * Secret, CN local-<cluster>): in KVStoreMesh mode the agents read every remote with it.
 */
export const LOCAL_CLIENT = {
  ca: "local-etcd-client-ca.crt",
  cert: "local-etcd-client.crt",
  key: "local-etcd-client.key",
} as const;

export function remoteCaKey(cluster: string): string {
  return `${cluster}.etcd-client-ca.crt`;
}

export function renderRemoteClusterConfig(config: RemoteClusterConfig): string {
  return stringify({
    endpoints: config.endpoints,
    "trusted-ca-file": config.trustedCaFile,
    "cert-file": config.certFile,
    "key-file": config.keyFile,
  });
}

/** Cilium counts a file as a cluster config only if it contains "endpoints:"; so do we. */
export function isRemoteClusterConfig(text: string): boolean {
  return text.includes("endpoints:");
}

export function parseRemoteClusterConfig(name: string, text: string): RemoteClusterConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new Error(
      `remote cluster ${name}: config is not YAML: ${(error as Error).message.split("\n")[0]}`,
      {
        cause: error,
      },
    );
  }
  const record = (doc ?? {}) as Record<string, unknown>;
  const endpoints = record.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0 || endpoints.some((e) => typeof e !== "string")) {
    throw new Error(`remote cluster ${name}: endpoints must be a non-empty list of URLs`);
  }
  for (const endpoint of endpoints as string[]) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new Error(`remote cluster ${name}: endpoint "${endpoint}" is not a URL`);
    }
    if (url.protocol !== "https:")
      throw new Error(`remote cluster ${name}: endpoint "${endpoint}" must use https`);
  }
  const file = (key: string, fallback: string) => {
    const value = record[key] ?? (key === "trusted-ca-file" ? record["ca-file"] : undefined) ?? fallback;
    if (typeof value !== "string") throw new Error(`remote cluster ${name}: ${key} must be a string`);
    return value.split("/").pop() as string;
  };
  return {
    name,
    endpoints: endpoints as string[],
    trustedCaFile: file("trusted-ca-file", COMMON_CLIENT.ca),
    certFile: file("cert-file", COMMON_CLIENT.cert),
    keyFile: file("key-file", COMMON_CLIENT.key),
  };
}
