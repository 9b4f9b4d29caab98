/**
 * What the encryption controller needs from an IPsec backend: kernel XFRM (static ESP states
 * from the Secret's keys) or strongSwan's userspace ESP (IKE with PSKs derived from them). The
 * controller decides peers, keys and drops; a backend installs them and says what is installed.
 */
import type { SaCounts } from "../../../lib/api/agent-status.js";
import type { IpsecBackendName } from "../../../lib/api/encryption.js";
import type { IpsecKeySet } from "./keys.js";
import type { XfrmNode, XfrmRemote } from "./xfrm.js";

export interface IpsecPeerReport {
  /** libipsec: established IKE and CHILD SAs with the peer */
  sas?: { ike: number; child: number };
  /** kernel XFRM: ESP states installed for the pair, per direction */
  states?: { in: number; out: number };
}

export interface IpsecReport {
  /** by node ("cluster/name") */
  peers: Record<string, IpsecPeerReport>;
  saCounts?: SaCounts;
  xfrmStates?: { in: number; out: number };
  /** A pair this node must bring up has no SA yet: sync again on the next round. */
  incomplete: boolean;
}

export interface IpsecBackend {
  readonly name: IpsecBackendName;
  /**
   * Whether this node keeps the old key for its pair with `remote` until the peer advertises the
   * new SPI (libipsec: the IKE initiator; kernel: every node, for its outbound state).
   */
  holdsBackKeyFor(remote: XfrmNode): boolean;
  /**
   * Makes SAs and routes match: `peers` encrypted (with their own keys during a rotation),
   * `dropPrefixes` dropped. `retry` asks for another sync on the next round even without changes.
   */
  sync(
    peers: readonly XfrmRemote[],
    keys: IpsecKeySet,
    options: { dropPrefixes: readonly string[] },
  ): Promise<{ retry: boolean }>;
  report(peers: readonly XfrmRemote[]): Promise<IpsecReport>;
  /** The agent stops: remote pod traffic must stay encrypted or dropped until the next agent runs. */
  stop(options: { dropPrefixes: readonly string[] }): Promise<void>;
}
