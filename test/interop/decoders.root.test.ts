/**
 * Our readers decide like Cilium's (issue 15: "everything Cilium may legally write that we do not
 * use must be accepted and ignored; everything it would refuse we refuse too"). Each case is one
 * (key, value) a remote may write; Cilium's verdict comes from its own decoders and validators at
 * the pinned release (the checker's `decode` mode), ours from lib/kvstore/remote-validation.ts.
 * Root only because it shares the interop build (test/interop/build.sh) with the other tests here.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { remoteConfigProblem } from "../../lib/clustermesh/cluster-config.js";
import { InvalidEntryError } from "../../lib/kvstore/errors.js";
import {
  CLUSTER_CONFIG_PREFIX,
  IDENTITY_IDS_PREFIX,
  IP_ENTRIES_PREFIX,
  keys,
} from "../../lib/kvstore/paths.js";
import {
  type EntryDecoder,
  remoteIdentityDecoder,
  remoteIpDecoder,
  remoteNodeDecoder,
  remoteServiceDecoder,
} from "../../lib/kvstore/remote-validation.js";
import { decodeClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import {
  CILIUM_RELEASES,
  type CiliumBinaries,
  type CiliumRelease,
  checkerDecode,
  ciliumBinaries,
} from "./cilium.js";

const REMOTE = { name: "c2", id: 2 };

interface Case {
  name: string;
  key: string;
  value: string;
  /**
   * Releases whose reader accepts what we refuse, and why we follow the newer releases. Asserted
   * too: if the release's verdict changes, the test says so.
   */
  olderCiliumAccepts?: Partial<Record<CiliumRelease, string>>;
}

const node = (fields: Record<string, unknown>) =>
  JSON.stringify({
    Name: "n1",
    Cluster: "c2",
    IPAddresses: [{ Type: "InternalIP", IP: "172.30.0.2" }],
    IPv4AllocCIDR: { IP: "10.2.1.0", Mask: "////AA==" },
    IPv4SecondaryAllocCIDRs: null,
    IPv6AllocCIDR: null,
    IPv6SecondaryAllocCIDRs: null,
    IPv4HealthIP: "",
    IPv6HealthIP: "",
    IPv4IngressIP: "",
    IPv6IngressIP: "",
    ClusterID: 2,
    Source: "custom-resource",
    EncryptionKey: 0,
    Labels: null,
    Annotations: null,
    WireguardPubKey: "",
    BootID: "",
    ...fields,
  });

const service = (fields: Record<string, unknown>) =>
  JSON.stringify({
    cluster: "c2",
    namespace: "demo",
    name: "echo",
    frontends: { "10.96.0.50": { http: { Protocol: "TCP", Port: 80 } } },
    backends: { "10.2.1.5": { http: { Protocol: "TCP", Port: 8080 } } },
    labels: {},
    selector: {},
    includeExternal: true,
    shared: true,
    clusterID: 2,
    ...fields,
  });

const ip = (fields: Record<string, unknown>) =>
  JSON.stringify({
    IP: "10.2.1.5",
    Mask: null,
    HostIP: "172.30.0.2",
    ID: 131172,
    Key: 0,
    Metadata: "",
    ...fields,
  });

const NODE_KEY = keys.node("c2", "n1");
const SERVICE_KEY = keys.service("c2", "demo", "echo");
const IP_KEY = keys.ip("10.2.1.5");

const CONFIG_KEY = keys.clusterConfig("c2");
const config = (capabilities: Record<string, unknown>, id = 2) =>
  JSON.stringify({ id, capabilities: { syncedCanaries: true, maxConnectedClusters: 255, ...capabilities } });

export const CASES: Case[] = [
  {
    name: "cluster config: as we write it",
    key: CONFIG_KEY,
    value: config({ serviceExportsEnabled: false }),
  },
  { name: "cluster config: Cilium 1.16 (no service exports)", key: CONFIG_KEY, value: config({}) },
  {
    name: "cluster config: cached, 511 clusters",
    key: CONFIG_KEY,
    value: config({ cached: true, maxConnectedClusters: 511 }),
  },
  { name: "cluster config: a future capability", key: CONFIG_KEY, value: config({ someFutureFlag: true }) },
  { name: "cluster config: no capabilities", key: CONFIG_KEY, value: '{"id":2}' },
  {
    name: "cluster config: an export mode we do not know (a field newer than 1.18)",
    key: CONFIG_KEY,
    value: config({ endpointSlicesExportMode: "services-only" }),
  },
  { name: "cluster config: id 0", key: CONFIG_KEY, value: config({}, 0) },
  { name: "cluster config: id 256", key: CONFIG_KEY, value: config({}, 256) },
  { name: "cluster config: not JSON", key: CONFIG_KEY, value: "{" },
  { name: "node: as we write it", key: NODE_KEY, value: node({}) },
  { name: "node: Cilium 1.15-1.19 NodeIdentity field", key: NODE_KEY, value: node({ NodeIdentity: 6 }) },
  {
    name: "node: health IPs",
    key: NODE_KEY,
    value: node({ IPv4HealthIP: "10.2.1.9", IPv6HealthIP: "fd00::9" }),
  },
  {
    name: "node: unknown address type",
    key: NODE_KEY,
    value: node({ IPAddresses: [{ Type: "SomeFutureIP", IP: "172.30.0.2" }] }),
  },
  {
    name: "node: zoned IPv6 address",
    key: NODE_KEY,
    value: node({ IPAddresses: [{ Type: "InternalIP", IP: "fe80::1%eth0" }] }),
  },
  { name: "node: CIDR as a string", key: NODE_KEY, value: node({ IPv4AllocCIDR: "10.2.1.0/24" }) },
  { name: "node: only name and cluster", key: NODE_KEY, value: '{"Name":"n1","Cluster":"c2","ClusterID":2}' },
  // Legal Cilium data we do not use: accepted (and counted as ignored by the merge), never refused.
  {
    name: "node: IPv6 only (node IP and pod CIDR)",
    key: NODE_KEY,
    value: node({
      IPAddresses: [{ Type: "InternalIP", IP: "fd00::2" }],
      IPv4AllocCIDR: null,
      IPv6AllocCIDR: { IP: "fd00:2::", Mask: "//////////8AAAAAAAAAAA==" },
    }),
  },
  {
    name: "node: every optional field set",
    key: NODE_KEY,
    value: node({
      IPAddresses: [
        { Type: "InternalIP", IP: "172.30.0.2" },
        { Type: "ExternalIP", IP: "203.0.113.2" },
        { Type: "CiliumInternalIP", IP: "10.2.1.1" },
      ],
      IPv4SecondaryAllocCIDRs: [{ IP: "10.2.9.0", Mask: "////AA==" }],
      IPv4IngressIP: "10.2.1.2",
      Labels: { "kubernetes.io/os": "linux" },
      Annotations: { "network.cilium.io/wg-pub-key": "x" },
      WireguardPubKey: "4b2BGJ3lStCoOG0eOeu0lQW55r1v4JjUaN3cQYkBU2Y=",
      BootID: "d3b3c0de-0000-4000-8000-000000000001",
      EncryptionKey: 3,
    }),
  },
  { name: "node: wrong cluster id", key: NODE_KEY, value: node({ ClusterID: 3 }) },
  { name: "node: cluster id 0", key: NODE_KEY, value: node({ ClusterID: 0 }) },
  { name: "node: wrong cluster", key: NODE_KEY, value: node({ Cluster: "c3" }) },
  { name: "node: name differs from key", key: NODE_KEY, value: node({ Name: "n2" }) },
  { name: "node: EncryptionKey 256", key: NODE_KEY, value: node({ EncryptionKey: 256 }) },
  { name: "node: not JSON", key: NODE_KEY, value: "{" },
  { name: "service: as we write it", key: SERVICE_KEY, value: service({}) },
  {
    name: "service: empty hostnames (Cilium 1.16-1.18)",
    key: SERVICE_KEY,
    value: service({ hostnames: {} }),
  },
  {
    name: "service: zones with empty forZones (Cilium >= 1.19)",
    key: SERVICE_KEY,
    value: service({ zones: { "10.2.1.5": { zone: "a", forZones: [] } } }),
  },
  {
    name: "service: zoned IPv6 backend",
    key: SERVICE_KEY,
    value: service({ backends: { "fe80::1%eth0": { http: { Protocol: "TCP", Port: 8080 } } } }),
  },
  {
    name: "service: zoned IPv6 frontend",
    key: SERVICE_KEY,
    value: service({ frontends: { "fe80::2%eth0": { http: { Protocol: "TCP", Port: 80 } } } }),
  },
  {
    name: "service: ip@clusterID backend",
    key: SERVICE_KEY,
    value: service({ backends: { "10.2.1.5@2": { http: { Protocol: "TCP", Port: 8080 } } } }),
  },
  {
    name: "service: unknown L4 protocol",
    key: SERVICE_KEY,
    value: service({ backends: { "10.2.1.5": { http: { Protocol: "QUIC", Port: 8080 } } } }),
  },
  {
    name: "service: port above 65535",
    key: SERVICE_KEY,
    value: service({ backends: { "10.2.1.5": { http: { Protocol: "TCP", Port: 70000 } } } }),
  },
  { name: "service: not shared", key: SERVICE_KEY, value: service({ shared: false }) },
  {
    name: "service: hostnames, IPv6 backend, no external",
    key: SERVICE_KEY,
    value: service({
      backends: { "fd00:2::5": { http: { Protocol: "TCP", Port: 8080 } } },
      hostnames: { "fd00:2::5": "echo-0" },
      includeExternal: false,
    }),
  },
  {
    name: "service: null port, port without protocol",
    key: SERVICE_KEY,
    value: service({ backends: { "10.2.1.5": { http: null, dns: { Port: 53 } } } }),
  },
  { name: "service: wrong cluster id", key: SERVICE_KEY, value: service({ clusterID: 3 }) },
  { name: "service: name differs from key", key: SERVICE_KEY, value: service({ name: "other" }) },
  { name: "service: no namespace", key: SERVICE_KEY, value: service({ namespace: "" }) },
  {
    name: "identity: as we write it",
    key: `${IDENTITY_IDS_PREFIX}/131172`,
    value: "k8s:app=echo;k8s:io.cilium.k8s.policy.cluster=c2;",
  },
  {
    name: "identity: outside the range",
    key: `${IDENTITY_IDS_PREFIX}/196708`,
    value: "k8s:io.cilium.k8s.policy.cluster=c2;",
  },
  { name: "identity: no cluster label", key: `${IDENTITY_IDS_PREFIX}/131172`, value: "k8s:app=echo;" },
  {
    name: "identity: other cluster's label",
    key: `${IDENTITY_IDS_PREFIX}/131172`,
    value: "k8s:io.cilium.k8s.policy.cluster=c3;",
  },
  {
    name: "identity: not a number",
    key: `${IDENTITY_IDS_PREFIX}/abc`,
    value: "k8s:io.cilium.k8s.policy.cluster=c2;",
  },
  { name: "identity: empty value", key: `${IDENTITY_IDS_PREFIX}/131172`, value: "" },
  { name: "ip: as we write it", key: IP_KEY, value: ip({}) },
  {
    name: "ip: with IPsec key and named ports",
    key: IP_KEY,
    value: ip({ Key: 3, NamedPorts: [{ Name: "http", Port: 80, Protocol: "TCP" }] }),
  },
  {
    name: "ip: IPv6 entry with pod metadata",
    key: `${IP_ENTRIES_PREFIX}/fd00:2::5`,
    value: ip({ IP: "fd00:2::5", HostIP: "fd00::2", K8sNamespace: "demo", K8sPodName: "echo-0" }),
  },
  {
    name: "identity: labels of every source",
    key: `${IDENTITY_IDS_PREFIX}/131173`,
    value:
      "k8s:app=echo;k8s:io.cilium.k8s.policy.cluster=c2;k8s:io.kubernetes.pod.namespace=demo;cilium-generated:x=y;unspec:z=1;",
  },
  { name: "ip: reserved identity (world)", key: IP_KEY, value: ip({ ID: 2 }) },
  {
    name: "ip: identity of another cluster",
    key: IP_KEY,
    value: ip({ ID: 196708 }),
    olderCiliumAccepts: {
      // https://github.com/cilium/cilium/blob/v1.16.17/pkg/ipcache/kvstore.go#L290-L298: no
      // identity check; 1.17 added WithIdentityValidator. No Cilium writer publishes another
      // cluster's identity for its own pod, and such an entry would let a remote relabel traffic.
      "v1.16": "1.16's ipcache watcher has no identity-range validator",
    },
  },
  { name: "ip: key differs from value", key: `${IP_ENTRIES_PREFIX}/10.2.1.6`, value: ip({}) },
  {
    name: "ip: prefix entry",
    key: `${IP_ENTRIES_PREFIX}/10.2.1.0/24`,
    value: ip({ IP: "10.2.1.0", Mask: "////AA==" }),
  },
  { name: "ip: zoned IPv6", key: `${IP_ENTRIES_PREFIX}/fe80::1%eth0`, value: ip({ IP: "fe80::1%eth0" }) },
  { name: "ip: Key 256", key: IP_KEY, value: ip({ Key: 256 }) },
];

/** Our verdict for a case: the remote decoder of the kind its key belongs to. */
export function ourVerdict(c: Case): { accepted: boolean; reason?: string } {
  if (c.key.startsWith(`${CLUSTER_CONFIG_PREFIX}/`)) return ourConfigVerdict(c);
  const decoders: [string, EntryDecoder<unknown>][] = [
    [`cilium/state/nodes/v1/${REMOTE.name}/`, remoteNodeDecoder(REMOTE)],
    [`cilium/state/services/v1/${REMOTE.name}/`, remoteServiceDecoder(REMOTE)],
    [`${IDENTITY_IDS_PREFIX}/`, remoteIdentityDecoder(REMOTE)],
    [`${IP_ENTRIES_PREFIX}/`, remoteIpDecoder(REMOTE)],
  ];
  const match = decoders.find(([prefix]) => c.key.startsWith(prefix));
  if (!match) throw new Error(`no decoder for ${c.key}`);
  try {
    match[1](c.key, c.key.slice(match[0].length), c.value);
    return { accepted: true };
  } catch (error) {
    if (!(error instanceof InvalidEntryError)) throw error;
    return { accepted: false, reason: `${error.reason}: ${error.detail}` };
  }
}

/** What our agent decides on a remote's cluster config (remote-cluster.ts), local: c1, id 1, 255. */
function ourConfigVerdict(c: Case): { accepted: boolean; reason?: string } {
  try {
    const problem = remoteConfigProblem(
      REMOTE.name,
      decodeClusterConfig(c.key, c.value),
      { name: "c1", id: 1, maxConnectedClusters: 255 },
      new Map(),
    );
    return problem ? { accepted: false, reason: problem } : { accepted: true };
  } catch (error) {
    if (!(error instanceof InvalidEntryError)) throw error;
    return { accepted: false, reason: `${error.reason}: ${error.detail}` };
  }
}

for (const release of CILIUM_RELEASES) {
  describe(`our remote decoders decide like Cilium ${release}'s`, () => {
    let cilium: CiliumBinaries;
    before(() => {
      cilium = ciliumBinaries(release);
    });

    it("accepts what Cilium accepts and rejects what it rejects, case by case", () => {
      const verdicts = checkerDecode(cilium, REMOTE, CASES);
      assert.equal(verdicts.length, CASES.length);
      const differences = CASES.flatMap((c, i) => {
        const theirs = verdicts[i];
        const ours = ourVerdict(c);
        const ciliumAccepts = theirs.verdict === "accepted";
        const known = c.olderCiliumAccepts?.[release];
        if (known !== undefined) {
          return ciliumAccepts && !ours.accepted
            ? []
            : [
                `${c.name}: expected the known difference (${known}); Cilium ${theirs.verdict}, we ${ours.accepted ? "accept" : "reject"}`,
              ];
        }
        return ciliumAccepts === ours.accepted
          ? []
          : [
              `${c.name}: Cilium ${theirs.verdict}${theirs.reason ? ` (${theirs.reason})` : ""}, we ${ours.accepted ? "accept" : `reject (${ours.reason})`}`,
            ];
      });
      assert.deepEqual(differences, []);
    });
  });
}
