/**
 * kubeconfig files: one written per component, and the user's kubeconfig into which `lab up` merges
 * one context per cluster and from which `lab down` removes it, the way kind does (other entries kept,
 * current-context set on merge and cleared on removal if it pointed there, mode 0600, embedded data).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { parse, stringify } from "yaml";

export interface KubeconfigEntry {
  /** https://ip:port */
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  context: string;
  cluster: string;
  user: string;
  namespace?: string;
}

interface Named<T> {
  name: string;
  [key: string]: unknown;
  value?: T;
}

interface KubeconfigDocument {
  apiVersion: string;
  kind: string;
  preferences: Record<string, unknown>;
  clusters: Named<unknown>[];
  users: Named<unknown>[];
  contexts: Named<unknown>[];
  "current-context": string;
  [key: string]: unknown;
}

/** `$KUBECONFIG`'s first entry, else ~/.kube/config (what kind and kubectl write to). */
export function defaultKubeconfigPath(): string {
  const fromEnv = (process.env.KUBECONFIG ?? "").split(delimiter).find((p) => p !== "");
  return fromEnv ?? join(homedir(), ".kube", "config");
}

const b64 = (pem: string) => Buffer.from(pem).toString("base64");

function entriesOf(entry: KubeconfigEntry) {
  return {
    cluster: {
      name: entry.cluster,
      cluster: { server: entry.server, "certificate-authority-data": b64(entry.caPem) },
    },
    user: {
      name: entry.user,
      user: { "client-certificate-data": b64(entry.certPem), "client-key-data": b64(entry.keyPem) },
    },
    context: {
      name: entry.context,
      context: {
        cluster: entry.cluster,
        user: entry.user,
        ...(entry.namespace ? { namespace: entry.namespace } : {}),
      },
    },
  };
}

function emptyDocument(): KubeconfigDocument {
  return {
    apiVersion: "v1",
    kind: "Config",
    preferences: {},
    clusters: [],
    users: [],
    contexts: [],
    "current-context": "",
  };
}

function readDocument(path: string): KubeconfigDocument {
  if (!existsSync(path)) return emptyDocument();
  const text = readFileSync(path, "utf8");
  const parsed = (text.trim() === "" ? {} : parse(text)) as Partial<KubeconfigDocument> | null;
  if (parsed !== null && typeof parsed !== "object") throw new Error(`${path} is not a kubeconfig file`);
  const doc = { ...emptyDocument(), ...(parsed ?? {}) };
  for (const list of ["clusters", "users", "contexts"] as const)
    doc[list] = Array.isArray(doc[list]) ? doc[list] : [];
  doc["current-context"] ??= "";
  return doc;
}

/** Atomic replace with mode 0600: the file holds private keys. */
function writeDocument(path: string, doc: KubeconfigDocument): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, stringify(doc), { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

function upsert(list: Named<unknown>[], item: Named<unknown>): Named<unknown>[] {
  const index = list.findIndex((e) => e?.name === item.name);
  if (index < 0) return [...list, item];
  const copy = [...list];
  copy[index] = item;
  return copy;
}

/** Writes a kubeconfig holding just this context (for a component), current-context set to it. */
export function writeKubeconfig(path: string, entry: KubeconfigEntry): void {
  const { cluster, user, context } = entriesOf(entry);
  writeDocument(path, {
    ...emptyDocument(),
    clusters: [cluster],
    users: [user],
    contexts: [context],
    "current-context": entry.context,
  });
}

/** Adds or replaces one context (and its cluster and user) and makes it current; other entries stay. */
export function mergeKubeconfigContext(path: string | undefined, entry: KubeconfigEntry): string {
  const target = path ?? defaultKubeconfigPath();
  const doc = readDocument(target);
  const { cluster, user, context } = entriesOf(entry);
  doc.clusters = upsert(doc.clusters, cluster);
  doc.users = upsert(doc.users, user);
  doc.contexts = upsert(doc.contexts, context);
  doc["current-context"] = entry.context;
  writeDocument(target, doc);
  return target;
}

/**
 * Removes a context and the cluster and user it names; clears current-context if it pointed there.
 * A missing file or context is not an error (removal is idempotent, as `lab down` must be).
 */
export function removeKubeconfigContext(path: string | undefined, contextName: string): string {
  const target = path ?? defaultKubeconfigPath();
  if (!existsSync(target)) return target;
  const doc = readDocument(target);
  const context = doc.contexts.find((c) => c?.name === contextName) as
    | { context?: { cluster?: string; user?: string } }
    | undefined;
  if (!context) return target;
  const clusterName = context.context?.cluster;
  const userName = context.context?.user;
  doc.contexts = doc.contexts.filter((c) => c?.name !== contextName);
  // Keep a cluster or user another context still uses.
  const stillUsed = (field: "cluster" | "user", name?: string) =>
    doc.contexts.some((c) => (c as { context?: Record<string, string> }).context?.[field] === name);
  if (clusterName && !stillUsed("cluster", clusterName))
    doc.clusters = doc.clusters.filter((c) => c?.name !== clusterName);
  if (userName && !stillUsed("user", userName)) doc.users = doc.users.filter((u) => u?.name !== userName);
  if (doc["current-context"] === contextName) doc["current-context"] = "";
  writeDocument(target, doc);
  return target;
}
