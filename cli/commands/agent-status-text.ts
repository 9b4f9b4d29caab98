/** Sections of `meshctl agent status` (text) from the agent's status document: encryption, endpoint policy. Pure. */
import type {
  EncryptionPeerStatus,
  EncryptionStatus,
  EndpointPolicyStatus,
} from "../../lib/api/agent-status.js";

/** An endpoint's POLICY IN/OUT and DROPS IN/OUT cells: "enforced"/"-" per direction, drop counts. */
export function policyCells(policy: EndpointPolicyStatus | undefined): [string, string] {
  if (!policy) return ["-/-", "-"];
  const mark = (on: boolean) => (on ? "enforced" : "-");
  return [`${mark(policy.ingress)}/${mark(policy.egress)}`, `${policy.drops.ingress}/${policy.drops.egress}`];
}

function ago(iso: string | undefined, now: number): string {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return `${seconds}s ago`;
}

export function encryptionSummary(
  status: EncryptionStatus | { mode: string } | undefined,
  now = Date.now(),
): { lines: string[]; table?: { header: string[]; rows: (string | number)[][] } } {
  if (!status || status.mode === "none" || !("peers" in status)) {
    return { lines: [`Encryption:  ${status?.mode ?? "none"}`] };
  }
  const lines = [
    `Encryption:  ${status.mode}, backend ${status.backend ?? "-"}${status.interface ? ` (${status.interface})` : ""}${
      status.keyId !== undefined ? `, key id ${status.keyId}` : ""
    }${status.saCounts ? `, SAs: ${status.saCounts.ike} IKE / ${status.saCounts.child} CHILD` : ""}${
      status.xfrmStates ? `, ESP states: ${status.xfrmStates.in} in / ${status.xfrmStates.out} out` : ""
    }`,
  ];
  if (status.backendDetail) lines.push(`             backend chosen by ${status.backendDetail}`);
  if (status.publicKey) lines.push(`             public key ${status.publicKey}`);
  if (status.error) lines.push(`             error: ${status.error}`);
  if (status.lastSync?.error) lines.push(`             last sync failed: ${status.lastSync.error}`);
  for (const skipped of status.skipped)
    lines.push(`             skipped ${skipped.node}: ${skipped.reason} (traffic dropped)`);
  // the columns after PEER, CLUSTER, ENDPOINT: what each backend knows about a peer
  const [header, cells]: [string[], (p: EncryptionPeerStatus) => (string | number)[]] =
    status.mode === "wireguard"
      ? [["LAST HANDSHAKE", "RX", "TX"], (p) => [ago(p.lastHandshake, now), p.rxBytes ?? 0, p.txBytes ?? 0]]
      : status.backend === "kernel-xfrm"
        ? [["ESP STATES IN", "ESP STATES OUT"], (p) => [p.states?.in ?? 0, p.states?.out ?? 0]]
        : [["IKE SAS", "CHILD SAS"], (p) => [p.sas?.ike ?? 0, p.sas?.child ?? 0]];
  return {
    lines,
    table: {
      header: ["PEER", "CLUSTER", "ENDPOINT", ...header],
      rows: status.peers.map((p) => [p.node, p.cluster, p.endpoint ?? "-", ...cells(p)]),
    },
  };
}
