/**
 * Port fields of both policy languages: NetworkPolicyPort (protocol TCP|UDP|SCTP, port int or name,
 * endPort) and Cilium's PortProtocol (port as a string, endPort, protocol TCP|UDP|SCTP|ANY).
 * Errors name the field and say what a valid value is.
 */
import type { FieldErrors } from "./errors.js";
import type { PortRule } from "./rules.js";
import { POLICY_PROTOCOL } from "./types.js";

const PROTOCOLS: Record<string, number> = {
  TCP: POLICY_PROTOCOL.tcp,
  UDP: POLICY_PROTOCOL.udp,
  SCTP: POLICY_PROTOCOL.sctp,
};
/** Cilium's ANY with a port means that port over each of TCP, UDP and SCTP. */
const ANY_PORT_PROTOCOLS = [POLICY_PROTOCOL.tcp, POLICY_PROTOCOL.udp, POLICY_PROTOCOL.sctp];

/** IANA service names: lowercase letters, digits and '-', at most 15, at least one letter (k8s IsValidPortName). */
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

export function protocolNumber(name: string): number | undefined {
  return PROTOCOLS[name.toUpperCase()];
}

function checkEndPort(endPort: unknown, port: number, path: string, errors: FieldErrors): number | undefined {
  if (endPort === undefined || endPort === null) return port;
  if (typeof endPort !== "number" || !Number.isInteger(endPort) || endPort < 1 || endPort > 65535) {
    errors.add(`${path}.endPort`, `must be an integer 1..65535 (got ${JSON.stringify(endPort)})`);
    return undefined;
  }
  if (endPort < port) {
    errors.add(`${path}.endPort`, `must be >= port (${endPort} < ${port})`);
    return undefined;
  }
  return endPort;
}

/** networking.k8s.io/v1 NetworkPolicyPort at `path`. */
export function parseNetworkPolicyPort(
  value: unknown,
  path: string,
  errors: FieldErrors,
): PortRule | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.add(path, "must be an object (protocol, port, endPort)");
    return undefined;
  }
  const { protocol = "TCP", port, endPort } = value as Record<string, unknown>;
  const proto = typeof protocol === "string" ? PROTOCOLS[protocol] : undefined;
  if (proto === undefined) {
    errors.add(`${path}.protocol`, `must be TCP, UDP or SCTP (got ${JSON.stringify(protocol)})`);
    return undefined;
  }
  if (port === undefined || port === null) {
    if (endPort !== undefined && endPort !== null) errors.add(`${path}.endPort`, "requires port");
    return { protocol: proto, port: 0, endPort: 0 };
  }
  if (typeof port === "string" && !/^\d+$/.test(port)) {
    if (!PORT_NAME.test(port)) {
      errors.add(`${path}.port`, `"${port}" is neither a port number nor a valid port name`);
      return undefined;
    }
    if (endPort !== undefined && endPort !== null)
      errors.add(`${path}.endPort`, "cannot be used with a named port");
    return { protocol: proto, name: port };
  }
  const number = Number(port);
  if (!Number.isInteger(number) || number < 1 || number > 65535) {
    errors.add(`${path}.port`, `must be 1..65535 or a port name (got ${JSON.stringify(port)})`);
    return undefined;
  }
  const end = checkEndPort(endPort, number, path, errors);
  return end === undefined ? undefined : { protocol: proto, port: number, endPort: end };
}

/** cilium.io/v2 PortProtocol at `path`: one port item may become several rules (ANY). */
export function parseCiliumPort(value: unknown, path: string, errors: FieldErrors): PortRule[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.add(path, "must be an object (port, endPort, protocol)");
    return [];
  }
  const { port, endPort, protocol = "ANY", ...rest } = value as Record<string, unknown>;
  for (const key of Object.keys(rest)) errors.add(`${path}.${key}`, "unknown field");
  const upper = typeof protocol === "string" ? protocol.toUpperCase() : "";
  const protos = upper === "ANY" ? ANY_PORT_PROTOCOLS : PROTOCOLS[upper] ? [PROTOCOLS[upper]] : undefined;
  if (!protos) {
    errors.add(`${path}.protocol`, `must be TCP, UDP, SCTP or ANY (got ${JSON.stringify(protocol)})`);
    return [];
  }
  const text = port === undefined || port === null ? "0" : String(port);
  if (!/^\d+$/.test(text)) {
    if (!PORT_NAME.test(text)) {
      errors.add(`${path}.port`, `"${text}" is neither a port number nor a valid port name`);
      return [];
    }
    if (endPort !== undefined && endPort !== null)
      errors.add(`${path}.endPort`, "cannot be used with a named port");
    return protos.map((protocol) => ({ protocol, name: text }));
  }
  const number = Number(text);
  if (number > 65535) {
    errors.add(`${path}.port`, `must be 0..65535 (got ${text})`);
    return [];
  }
  if (number === 0) {
    if (endPort !== undefined && endPort !== null && endPort !== 0)
      errors.add(`${path}.endPort`, "requires a port other than 0");
    // port 0 = every port: with ANY that is every protocol
    return upper === "ANY"
      ? [{ protocol: POLICY_PROTOCOL.any, port: 0, endPort: 0 }]
      : protos.map((p) => ({ protocol: p, port: 0, endPort: 0 }));
  }
  const end = checkEndPort(endPort === 0 ? undefined : endPort, number, path, errors);
  return end === undefined ? [] : protos.map((protocol) => ({ protocol, port: number, endPort: end }));
}
