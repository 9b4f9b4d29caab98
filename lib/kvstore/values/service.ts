/**
 * `cilium/state/services/v1/<cluster>/<ns>/<name>` — Cilium's ClusterService
 * (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/store/store.go).
 * Written in the shape of Cilium 1.16–1.18 (byte-identical to v1.18.4: `hostnames` always present,
 * `{}` when empty), plus `zones` (Cilium >= 1.19, with `forZones` as a list, never null) only when
 * there are zones — older readers ignore the field.
 */
import { InvalidEntryError } from "../errors.js";
import { FieldReader, type GoStruct, type GoValue, goMap, goMarshal, parseJsonObject } from "../go-json.js";
import { canonicalIp } from "../wire-ip.js";

export const L4_PROTOCOLS = ["TCP", "UDP", "SCTP", "ANY", "NONE"] as const;
export type L4Protocol = (typeof L4_PROTOCOLS)[number];

export interface L4Addr {
  Protocol: L4Protocol;
  Port: number;
}
/** Port name ("" for an unnamed port) → protocol and port. */
export type PortConfiguration = Record<string, L4Addr>;

export interface BackendZone {
  zone: string;
  forZones: { name: string }[] | null;
}

/** A part of a remote service the decoder left out: legal for Cilium, unusable for us. */
export interface LeftOut {
  reason: "unsupported-address" | "unsupported-port";
  detail: string;
}

export interface ClusterService {
  cluster: string;
  namespace: string;
  name: string;
  /** Frontend IP (the ClusterIPs) → ports. */
  frontends: Record<string, PortConfiguration>;
  /** Backend IP → ports. */
  backends: Record<string, PortConfiguration>;
  hostnames?: Record<string, string>;
  zones?: Record<string, BackendZone>;
  labels: Record<string, string>;
  selector: Record<string, string>;
  includeExternal: boolean;
  shared: boolean;
  clusterID: number;
  /** Decoded only: what was left out (counted by the reader as ignored); never encoded. */
  leftOut?: LeftOut[];
}

const portConfiguration = (ports: PortConfiguration): GoValue =>
  goMap(ports, (l4) => ({ Protocol: l4.Protocol, Port: l4.Port }));

const isEmpty = (record: Record<string, unknown> | undefined) => !record || Object.keys(record).length === 0;

export function encodeService(service: ClusterService): string {
  const struct: GoStruct = {
    cluster: service.cluster,
    namespace: service.namespace,
    name: service.name,
    frontends: goMap(service.frontends, portConfiguration),
    backends: goMap(service.backends, portConfiguration),
    // Cilium 1.16-1.18: no omitempty, NewClusterService makes the map: always written.
    hostnames: goMap(service.hostnames ?? {}, (v) => v),
    // Cilium >= 1.19: omitempty; forZones is written as a list (empty: []).
    zones: isEmpty(service.zones)
      ? undefined
      : goMap(service.zones ?? {}, (z) => ({
          zone: z.zone,
          forZones: (z.forZones ?? []).map((f) => ({ name: f.name })),
        })),
    labels: goMap(service.labels, (v) => v),
    selector: goMap(service.selector, (v) => v),
    includeExternal: service.includeExternal,
    shared: service.shared,
    clusterID: service.clusterID,
  };
  return goMarshal(struct);
}

/**
 * Frontend and backend address keys, decided like Cilium (ClusterService.validate:
 * netip.ParseAddr on every key, pkg/clustermesh/store/store.go): an IP, where IPv6 may carry a zone
 * ("fe80::1%eth0"); anything else — including the "ip@clusterID" form, which Cilium only uses
 * inside the agent — makes the whole service invalid. Returns the canonical IP, or undefined for a
 * zoned address: legal, but a zone has no meaning for a remote backend, so it is left out.
 */
function addressKey(key: string, what: string, text: string): string | undefined {
  const percent = text.indexOf("%");
  if (percent < 0) return canonicalIp(key, what, text);
  const ip = canonicalIp(key, what, text.slice(0, percent));
  if (!ip.includes(":") || percent === text.length - 1) {
    throw new InvalidEntryError(
      key,
      "bad-ip",
      `${what} "${text}" has a zone but is not an IPv6 address with a zone`,
    );
  }
  return undefined;
}

/**
 * Ports, decided like Go's decoding into map[string]*loadbalancer.L4Addr: a null port is legal
 * (nil pointer) and so is any protocol string (L4Type is not checked when decoding); ports we
 * cannot program (null, or a protocol we do not know) are left out. Port must fit in a uint16.
 */
function decodePorts(reader: FieldReader, where: string, leftOut: LeftOut[]): PortConfiguration {
  const ports: PortConfiguration = {};
  for (const portName of Object.keys(reader.object)) {
    const l4 = reader.object_(portName);
    if (!l4) {
      leftOut.push({ reason: "unsupported-port", detail: `${where} port "${portName}" is null` });
      continue;
    }
    const protocol = l4.string("Protocol");
    const port = l4.uint("Port", 16);
    if ((L4_PROTOCOLS as readonly string[]).includes(protocol))
      ports[portName] = { Protocol: protocol as L4Protocol, Port: port };
    else
      leftOut.push({
        reason: "unsupported-port",
        detail: `${where} port "${portName}" has protocol "${protocol}"`,
      });
  }
  return ports;
}

function decodeAddressMap(
  reader: FieldReader,
  field: string,
  leftOut: LeftOut[],
): Record<string, PortConfiguration> {
  const map = reader.object_(field);
  const out: Record<string, PortConfiguration> = {};
  if (!map) return out;
  // The backends of a service nearly always expose the same ports: one object per distinct port
  // set instead of one per address (a service's decoded size halves with 10 backends).
  const distinct = new Map<string, PortConfiguration>();
  for (const address of Object.keys(map.object)) {
    const ports = map.object_(address);
    const canonical = addressKey(reader.key, `${field} key`, address);
    if (canonical === undefined) {
      leftOut.push({ reason: "unsupported-address", detail: `${field} address ${address} has a zone` });
      continue;
    }
    const decoded = ports ? decodePorts(ports, `${field} ${canonical}`, leftOut) : {};
    const signature = JSON.stringify(decoded);
    const known = distinct.get(signature);
    if (known) out[canonical] = known;
    else {
      distinct.set(signature, decoded);
      out[canonical] = decoded;
    }
  }
  return out;
}

export function decodeService(key: string, raw: string | Buffer): ClusterService {
  const reader = new FieldReader(key, parseJsonObject(key, raw));
  const leftOut: LeftOut[] = [];
  const service: ClusterService = {
    cluster: reader.string("cluster"),
    namespace: reader.string("namespace"),
    name: reader.string("name"),
    frontends: decodeAddressMap(reader, "frontends", leftOut),
    backends: decodeAddressMap(reader, "backends", leftOut),
    labels: reader.stringMap("labels") ?? {},
    selector: reader.stringMap("selector") ?? {},
    includeExternal: reader.bool("includeExternal"),
    shared: reader.bool("shared"),
    clusterID: reader.uint("clusterID", 32),
  };
  const hostnames = reader.stringMap("hostnames");
  if (hostnames && Object.keys(hostnames).length > 0) service.hostnames = hostnames;
  const zones = reader.object_("zones");
  if (zones && Object.keys(zones.object).length > 0) {
    service.zones = {};
    for (const ip of Object.keys(zones.object)) {
      const zone = zones.object_(ip);
      if (!zone) continue;
      const forZones = zone.array("forZones");
      service.zones[ip] = {
        zone: zone.string("zone"),
        forZones:
          forZones === null
            ? null
            : forZones.map((f, i) => ({ name: zone.element("forZones", f, i).string("name") })),
      };
    }
  }
  if (leftOut.length > 0) service.leftOut = leftOut;
  return service;
}
