/**
 * Authentication: a client certificate signed by the cluster CA (user = CN, groups = O) or a bearer
 * token from the static token file. There is no authorization: every authenticated user may do
 * anything (the lab's clusters have one administrator and a few components).
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

export interface UserInfo {
  name: string;
  groups: string[];
  uid?: string;
}

/** Parses a kube-apiserver `--token-auth-file`: CSV lines `token,user,uid[,"group1,group2"]`. */
export function parseTokenFile(text: string): Map<string, UserInfo> {
  const tokens = new Map<string, UserInfo>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^([^,]*),([^,]*),([^,]*)(?:,(.*))?$/.exec(line);
    const fields = m ? [m[1], m[2], m[3], (m[4] ?? "").replace(/^\s*"|"\s*$/g, "")].map((f) => f.trim()) : [];
    if (fields.length < 3 || !fields[0] || !fields[1])
      throw new Error(`token file line ${index + 1}: expected token,user,uid[,"groups"]`);
    tokens.set(fields[0], {
      name: fields[1],
      uid: fields[2] || undefined,
      groups: (fields[3] ?? "")
        .split(",")
        .map((g) => g.trim())
        .filter(Boolean),
    });
  });
  return tokens;
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function authenticate(req: IncomingMessage, tokens: Map<string, UserInfo>): UserInfo | undefined {
  const socket = req.socket as TLSSocket;
  if (socket.authorized) {
    const certificate = socket.getPeerCertificate();
    const name = asList(certificate?.subject?.CN)[0];
    if (name) return { name, groups: [...asList(certificate.subject.O), "system:authenticated"] };
  }
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (match) {
    const user = tokens.get(match[1]);
    if (user) return { ...user, groups: [...user.groups, "system:authenticated"] };
  }
  return undefined;
}
