/** The etcd client of one remote cluster (agent: the remote's etcd or its KVStoreMesh; apiserver in KVStoreMesh mode: the remote's etcd). */
import { Etcd3 } from "etcd3";
import type { RemoteConnection } from "./remote-entries.js";

/**
 * WatchStore lists in pages (LIST_PAGE_KEYS), so no response is near this; it stays generous for a
 * single huge value (a service with many backends) rather than failing its key.
 */
const MAX_RECEIVE_BYTES = 512 * 1024 * 1024;

export function connectRemote(connection: RemoteConnection): Etcd3 {
  return new Etcd3({
    hosts: connection.endpoints,
    credentials: {
      rootCertificate: Buffer.from(connection.tls.ca),
      certChain: Buffer.from(connection.tls.cert),
      privateKey: Buffer.from(connection.tls.key),
    },
    grpcOptions: {
      "grpc.ssl_target_name_override": connection.serverName,
      "grpc.default_authority": connection.serverName,
      "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
    },
    dialTimeout: 3_000,
  });
}
