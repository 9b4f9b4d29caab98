import { type Cidr, cidrContains, cidrSize, formatCidr, nthAddress, parseCidr } from "../../lib/cidr.js";

export class IpamExhaustedError extends Error {}

/**
 * Hands out pod IPs from the node's pod CIDR. Pure bookkeeping: the agent restores it on start-up
 * from what the kernel and the API already hold (restore), so a restart never hands out an IP twice.
 * The network address, .1 (kept for the node's router address) and the broadcast address are never
 * given out.
 */
export class PodIpAllocator {
  private readonly cidr: Cidr;
  private readonly owners = new Map<string, string>(); // ip -> owner
  private readonly byOwner = new Map<string, string>(); // owner -> ip
  private cursor = 2n;

  constructor(podCidr: string) {
    this.cidr = parseCidr(podCidr);
    if (cidrSize(this.cidr) < 4n) throw new Error(`pod CIDR ${podCidr} is too small`);
  }

  get podCidr(): string {
    return formatCidr(this.cidr);
  }

  get routerAddress(): string {
    return nthAddress(this.cidr, 1);
  }

  /** Allocates an IP for owner, or returns the one it already has (ADD is retried by runtimes). */
  allocate(owner: string): string {
    const existing = this.byOwner.get(owner);
    if (existing) return existing;
    const size = cidrSize(this.cidr);
    const usable = size - 3n;
    for (let tried = 0n; tried < usable; tried++) {
      const offset = this.cursor;
      this.cursor = this.cursor + 1n >= size - 1n ? 2n : this.cursor + 1n;
      const ip = nthAddress(this.cidr, offset);
      if (!this.owners.has(ip)) {
        this.owners.set(ip, owner);
        this.byOwner.set(owner, ip);
        return ip;
      }
    }
    throw new IpamExhaustedError(`pod CIDR ${this.podCidr} has no free address (${this.owners.size} in use)`);
  }

  /** Records an allocation found in the kernel or the API. Throws when the IP is outside the CIDR or taken by another owner. */
  restore(ip: string, owner: string): void {
    if (!cidrContains(this.cidr, ip)) throw new Error(`${ip} is outside the pod CIDR ${this.podCidr}`);
    const current = this.owners.get(ip);
    if (current !== undefined && current !== owner)
      throw new Error(`${ip} is owned by ${current}, not ${owner}`);
    this.owners.set(ip, owner);
    this.byOwner.set(owner, ip);
  }

  release(owner: string): string | undefined {
    const ip = this.byOwner.get(owner);
    if (ip === undefined) return undefined;
    this.byOwner.delete(owner);
    this.owners.delete(ip);
    return ip;
  }

  ownerOf(ip: string): string | undefined {
    return this.owners.get(ip);
  }

  ipOf(owner: string): string | undefined {
    return this.byOwner.get(owner);
  }

  get allocated(): ReadonlyMap<string, string> {
    return this.owners;
  }
}
