/**
 * Service semantics on write: ClusterIP (honouring a requested one, `None` for headless) and NodePorts,
 * derived from the stored Services under one lock so two creates never get the same address.
 */
import { invalid, invalidValue } from "./errors.js";
import { AllocationError, allocateNodePort, type PortRange, type ServiceIpRange } from "./ipalloc.js";
import type { KubeObject } from "./objects.js";
import type { ResourceType } from "./registry.js";
import type { ObjectStore } from "./storage.js";

export class ServiceAllocator {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: ObjectStore,
    private readonly services: ResourceType,
    readonly ipRange: ServiceIpRange,
    private readonly nodePorts: PortRange,
  ) {}

  /** Runs allocation + write one at a time, so "in use" is always up to date. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    // the caller gets the error through `run`; the queue only has to go on after it
    this.tail = run.catch(() => {});
    return run;
  }

  /** Fills spec.clusterIP(s), ipFamilies and nodePorts of a Service being created or updated (mutates). */
  async assign(service: KubeObject, old?: KubeObject): Promise<void> {
    const spec = service.spec;
    const name = service.metadata.name ?? "";
    const { items } = await this.store.list(this.services);
    const others = items.filter(
      (s) => !(s.metadata.namespace === service.metadata.namespace && s.metadata.name === name),
    );
    const usedIps = new Set(
      others.map((s) => s.spec?.clusterIP).filter((ip): ip is string => !!ip && ip !== "None"),
    );
    const usedPorts = new Set<number>(
      others
        .flatMap((s) => (s.spec?.ports ?? []).map((p: { nodePort?: number }) => p.nodePort))
        .filter(Boolean),
    );
    try {
      if (spec.type === "ExternalName") {
        delete spec.clusterIP;
        delete spec.clusterIPs;
      } else {
        const requested = spec.clusterIP || spec.clusterIPs?.[0] || old?.spec?.clusterIP || undefined;
        if (requested === "None") spec.clusterIP = "None";
        else if (requested && requested === old?.spec?.clusterIP) spec.clusterIP = requested;
        else spec.clusterIP = this.ipRange.allocate(usedIps, requested);
        spec.clusterIPs = [spec.clusterIP];
        spec.ipFamilies ??= [this.ipRange.cidr.family === 4 ? "IPv4" : "IPv6"];
        spec.ipFamilyPolicy ??= "SingleStack";
      }
      const wantsNodePorts = spec.type === "NodePort" || spec.type === "LoadBalancer";
      (spec.ports ?? []).forEach((port: { port: number; protocol: string; nodePort?: number }) => {
        if (!wantsNodePorts) {
          delete port.nodePort;
          return;
        }
        const previous = (old?.spec?.ports ?? []).find(
          (p: { port: number; protocol: string }) => p.port === port.port && p.protocol === port.protocol,
        )?.nodePort;
        if (port.nodePort !== undefined && port.nodePort === previous) return;
        port.nodePort = allocateNodePort(this.nodePorts, usedPorts, port.nodePort ?? previous);
        usedPorts.add(port.nodePort);
      });
    } catch (error) {
      if (!(error instanceof AllocationError)) throw error;
      const field = /port/.test(error.message) ? "spec.ports[*].nodePort" : "spec.clusterIPs";
      throw invalid("Service", "", name, [invalidValue(field, spec.clusterIP ?? null, error.message)]);
    }
  }
}
