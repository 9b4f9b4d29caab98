/**
 * The clustermesh-apiserver's optional Hubble relay (lib/hubble/relay.ts): one per cluster, merging
 * the observers of the cluster's agents and, over mutual TLS, the relays of connected clusters.
 *   --hubble-relay-address :4245 --hubble-relay-peer <name>=<host:port|unix:/path> (repeatable)
 *   [--hubble-relay-tls-ca F --hubble-relay-tls-cert F --hubble-relay-tls-key F]  (server and TCP peers)
 * Peers are given, not discovered: a peer that is down is named in ServerStatus and GetNodes.
 */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { HubbleRelay, type RelayPeer } from "../lib/hubble/relay.js";
import { packageVersion } from "../lib/version.js";

const collect = (value: string, previous: string[] = []) => {
  if (!/^[^=]+=.+$/.test(value)) throw new InvalidArgumentError("must be <name>=<host:port or unix:/path>");
  return [...previous, value];
};

export function addHubbleRelayOptions(program: Command): Command {
  return program
    .option("--hubble-relay-address <host:port>", "serve a Hubble relay here (off when absent)")
    .option("--hubble-relay-peer <name=address>", "a Hubble server to merge (repeatable)", collect, [])
    .option("--hubble-relay-tls-ca <file>", "CA for the relay's mutual TLS (server and TCP peers)")
    .option("--hubble-relay-tls-cert <file>", "the relay's certificate")
    .option("--hubble-relay-tls-key <file>", "the relay's key");
}

export interface HubbleRelayFlags {
  hubbleRelayAddress?: string;
  hubbleRelayPeer: string[];
  hubbleRelayTlsCa?: string;
  hubbleRelayTlsCert?: string;
  hubbleRelayTlsKey?: string;
}

export async function startHubbleRelay(flags: HubbleRelayFlags): Promise<HubbleRelay | undefined> {
  if (!flags.hubbleRelayAddress) return undefined;
  const files = [flags.hubbleRelayTlsCa, flags.hubbleRelayTlsCert, flags.hubbleRelayTlsKey];
  if (files.some(Boolean) && !files.every(Boolean))
    throw new Error("--hubble-relay-tls-ca, --hubble-relay-tls-cert and --hubble-relay-tls-key go together");
  const tls = files.every(Boolean)
    ? {
        ca: readFileSync(flags.hubbleRelayTlsCa as string),
        cert: readFileSync(flags.hubbleRelayTlsCert as string),
        key: readFileSync(flags.hubbleRelayTlsKey as string),
      }
    : undefined;
  const peers: RelayPeer[] = flags.hubbleRelayPeer.map((entry) => {
    const at = entry.indexOf("=");
    const target = entry.slice(at + 1);
    return {
      name: entry.slice(0, at),
      target,
      ...(tls && !target.startsWith("unix:") ? { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } } : {}),
    };
  });
  return HubbleRelay.start({
    listenAddress: flags.hubbleRelayAddress,
    version: packageVersion(),
    tls,
    peers: () => peers,
  });
}
