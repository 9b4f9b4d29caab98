/**
 * Routes owned by encryption, in the node netns: remote pod prefixes via the WireGuard device, and
 * blackhole/unreachable routes for prefixes that must be encrypted but cannot be (a rejected peer),
 * so their traffic is dropped instead of leaving in plain text through another route. Every route
 * carries ENCRYPTION_ROUTE_PROTOCOL, which is how sync finds and removes only its own routes.
 */
import { formatCidr, parseCidr } from "../../lib/cidr.js";
import { run } from "../../lib/exec.js";

export const ENCRYPTION_ROUTE_PROTOCOL = 211;

export type DropRouteType = "blackhole" | "unreachable";

export type EncryptionRoute = { prefix: string; dev: string } | { prefix: string; type: DropRouteType };

export interface RouteSyncOptions {
  netns?: string;
  table?: number;
}

/** Pure: routes for peer prefixes via `ifname` plus drop routes. A prefix in both is dropped. */
export function encryptionRoutes(
  ifname: string,
  peerPrefixes: readonly string[],
  dropPrefixes: readonly string[],
  dropType: DropRouteType = "blackhole",
): EncryptionRoute[] {
  const drops = new Set(dropPrefixes.map(normalisePrefix));
  const routes: EncryptionRoute[] = [...drops].map((prefix) => ({ prefix, type: dropType }));
  for (const prefix of new Set(peerPrefixes.map(normalisePrefix))) {
    if (!drops.has(prefix)) routes.push({ prefix, dev: ifname });
  }
  return routes.sort((a, b) => (a.prefix < b.prefix ? -1 : 1));
}

function normalisePrefix(text: string): string {
  if (text.includes("/")) return formatCidr(parseCidr(text));
  return formatCidr(parseCidr(`${text}/${text.includes(":") ? 128 : 32}`));
}

function routeKey(route: EncryptionRoute): string {
  return "dev" in route ? `${route.prefix} dev ${route.dev}` : `${route.prefix} ${route.type}`;
}

interface RouteJson {
  dst: string;
  dev?: string;
  type?: string;
}

async function currentRoutes(options: RouteSyncOptions): Promise<EncryptionRoute[]> {
  const routes: EncryptionRoute[] = [];
  for (const family of ["-4", "-6"]) {
    const argv = ["ip", "-j", family, "route", "show", "proto", String(ENCRYPTION_ROUTE_PROTOCOL)];
    if (options.table !== undefined) argv.push("table", String(options.table));
    const out = await run(argv, { netns: options.netns });
    for (const route of (out.trim() ? JSON.parse(out) : []) as RouteJson[]) {
      if (route.dst === "default") continue;
      const prefix = normalisePrefix(route.dst);
      if (route.type === "blackhole" || route.type === "unreachable")
        routes.push({ prefix, type: route.type });
      else if (route.dev) routes.push({ prefix, dev: route.dev });
    }
  }
  return routes;
}

function routeArgs(route: EncryptionRoute, options: RouteSyncOptions): string {
  const table = options.table !== undefined ? ` table ${options.table}` : "";
  const target = "dev" in route ? `${route.prefix} dev ${route.dev}` : `${route.type} ${route.prefix}`;
  return `${target} proto ${ENCRYPTION_ROUTE_PROTOCOL}${table}`;
}

/** Makes this module's routes exactly `desired` (one `ip -batch` run); others' routes are untouched. */
export async function syncEncryptionRoutes(
  desired: readonly EncryptionRoute[],
  options: RouteSyncOptions = {},
): Promise<{ added: number; removed: number }> {
  const current = await currentRoutes(options);
  const currentKeys = new Set(current.map(routeKey));
  const desiredKeys = new Set(desired.map(routeKey));
  const desiredPrefixes = new Set(desired.map((r) => r.prefix));
  const lines: string[] = [];
  // A prefix that changes kind is replaced in place (no window without a route); others are deleted.
  for (const route of current) {
    if (!desiredKeys.has(routeKey(route)) && !desiredPrefixes.has(route.prefix)) {
      lines.push(`route del ${routeArgs(route, options)}`);
    }
  }
  let added = 0;
  for (const route of desired) {
    if (!currentKeys.has(routeKey(route))) {
      lines.push(`route replace ${routeArgs(route, options)}`);
      added++;
    }
  }
  if (lines.length > 0)
    await run(["ip", "-batch", "-"], { netns: options.netns, input: `${lines.join("\n")}\n` });
  return { added, removed: lines.length - added };
}
