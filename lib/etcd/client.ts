import { readFileSync } from "node:fs";
import { Etcd3 } from "etcd3";

export interface EtcdClientTls {
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  /** Client certificate; its CN is the etcd user. */
  cert: string;
  key: string;
}

export interface EtcdClientOptions {
  endpoints: string[];
  tls: EtcdClientTls;
  /**
   * Name checked against the server certificate. Defaults to the apiserver's CN, which Cilium's
   * server certificates always carry, so endpoints can be plain IPs without an IP-SAN lookup.
   */
  serverName?: string;
  dialTimeoutMs?: number;
}

export function tlsFromFiles(paths: { ca: string; cert: string; key: string }): EtcdClientTls {
  return {
    ca: readFileSync(paths.ca, "utf8"),
    cert: readFileSync(paths.cert, "utf8"),
    key: readFileSync(paths.key, "utf8"),
  };
}

export function connectEtcd(options: EtcdClientOptions): Etcd3 {
  return new Etcd3({
    hosts: options.endpoints,
    credentials: {
      rootCertificate: Buffer.from(options.tls.ca),
      certChain: Buffer.from(options.tls.cert),
      privateKey: Buffer.from(options.tls.key),
    },
    grpcOptions: {
      "grpc.ssl_target_name_override": options.serverName ?? "clustermesh-apiserver.cilium.io",
      "grpc.default_authority": options.serverName ?? "clustermesh-apiserver.cilium.io",
    },
    dialTimeout: options.dialTimeoutMs ?? 3_000,
  });
}
