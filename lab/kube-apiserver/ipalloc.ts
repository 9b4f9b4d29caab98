/**
 * ClusterIP and NodePort allocation. Pure: the caller passes what is in use (derived from the stored
 * Services, so nothing extra has to survive a restart and a deleted Service frees its addresses).
 */
import { type Cidr, cidrContains, cidrSize, formatCidr, nthAddress, parseCidr } from "../../lib/cidr.js";

export interface PortRange {
  first: number;
  last: number;
}

export function parsePortRange(text: string): PortRange {
  const m = /^(\d+)-(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a port range (expected first-last, e.g. 30000-32767)`);
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first < 1 || last > 65535 || first > last) throw new Error(`"${text}" is not a valid port range`);
  return { first, last };
}

export class AllocationError extends Error {}

export class ServiceIpRange {
  readonly cidr: Cidr;

  constructor(text: string) {
    this.cidr = parseCidr(text);
    if (cidrSize(this.cidr) < 4n) throw new Error(`service range ${text} is too small`);
  }

  /** The address of the `kubernetes` Service: the range's first usable address. */
  get apiServerServiceIp(): string {
    return nthAddress(this.cidr, 1);
  }

  contains(ip: string): boolean {
    try {
      return cidrContains(this.cidr, ip) && ip !== this.networkAddress() && ip !== this.broadcastAddress();
    } catch {
      return false;
    }
  }

  private networkAddress(): string {
    return nthAddress(this.cidr, 0);
  }

  private broadcastAddress(): string | undefined {
    return this.cidr.family === 4 ? nthAddress(this.cidr, cidrSize(this.cidr) - 1n) : undefined;
  }

  /** Returns `requested` if free and in range, else a free address; throws AllocationError. */
  allocate(used: Set<string>, requested?: string): string {
    if (requested) {
      if (!this.contains(requested))
        throw new AllocationError(
          `the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${formatCidr(this.cidr)}`,
        );
      if (used.has(requested))
        throw new AllocationError(`the provided IP (${requested}) is already allocated`);
      return requested;
    }
    const size = cidrSize(this.cidr);
    const usable = size - (this.cidr.family === 4 ? 2n : 1n);
    const limit = usable > 65536n ? 65536n : usable;
    // Start at a random offset (as kube-apiserver does) so a freed address is not reused at once.
    const start = BigInt(Math.floor(Math.random() * Number(limit)));
    for (let i = 0n; i < limit; i++) {
      const ip = nthAddress(this.cidr, 1n + ((start + i) % limit));
      if (!used.has(ip)) return ip;
    }
    throw new AllocationError(`no free IP address left in ${formatCidr(this.cidr)}`);
  }
}

export function allocateNodePort(range: PortRange, used: Set<number>, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < range.first || requested > range.last)
      throw new AllocationError(
        `provided port is not in the valid range. The range of valid ports is ${range.first}-${range.last}`,
      );
    if (used.has(requested)) throw new AllocationError("provided port is already allocated");
    return requested;
  }
  const size = range.last - range.first + 1;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = range.first + ((start + i) % size);
    if (!used.has(port)) return port;
  }
  throw new AllocationError(`no free node port left in ${range.first}-${range.last}`);
}
