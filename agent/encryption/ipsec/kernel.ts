/**
 * Kernel IPsec: the capability probe (does this kernel do ESP with rfc4106?) that picks the
 * backend, and applying the XFRM model's commands in a netns. On kernels without ESP (this
 * machine) states cannot be installed, but policies can: the policies-only mode installs them so
 * that traffic that must be encrypted is blocked rather than sent plain.
 */
import { randomBytes } from "node:crypto";
import { CommandError, run } from "../../../lib/exec.js";
import type { Logger } from "../../../lib/log.js";
import { planXfrmChanges, type XfrmCommand, type XfrmModel } from "./xfrm.js";

export type IpsecBackendKind = "kernel-xfrm" | "userspace-libipsec";

export interface EspProbeResult {
  kernelEsp: boolean;
  backend: IpsecBackendKind;
  /** What the kernel said, for logs and status. */
  detail: string;
}

/** Errors meaning "this kernel has no ESP/AEAD" (CONFIG_INET_ESP or CRYPTO_GCM missing). */
export function classifyProbeError(stderr: string): "no-esp" | "other" {
  return /AEAD algorithm not found|Requested type not found|Protocol not supported|not supported/i.test(
    stderr,
  )
    ? "no-esp"
    : "other";
}

/** Tries an rfc4106 ESP state in a scratch netns it creates and deletes. */
export async function probeKernelEsp(log?: Logger): Promise<EspProbeResult> {
  const netns = `cm-esp-probe-${randomBytes(4).toString("hex")}`;
  let result: EspProbeResult;
  await run(["ip", "netns", "add", netns]);
  try {
    await run(
      [
        "ip",
        "xfrm",
        "state",
        "add",
        "src",
        "192.0.2.1",
        "dst",
        "192.0.2.2",
        "proto",
        "esp",
        "spi",
        "0x100",
        "reqid",
        "1",
        "mode",
        "tunnel",
        "aead",
        "rfc4106(gcm(aes))",
        `0x${randomBytes(20).toString("hex")}`,
        "128",
      ],
      { netns },
    );
    result = { kernelEsp: true, backend: "kernel-xfrm", detail: "rfc4106(gcm(aes)) ESP state accepted" };
  } catch (error) {
    const stderr = error instanceof CommandError ? error.stderr.trim() : String(error);
    const kind = classifyProbeError(stderr);
    result = {
      kernelEsp: false,
      backend: "userspace-libipsec",
      detail:
        kind === "no-esp"
          ? `kernel has no ESP: ${stderr}`
          : `ESP probe failed (${stderr}); assuming no kernel ESP`,
    };
  } finally {
    await run(["ip", "netns", "del", netns]).catch(() => undefined);
  }
  log?.info({ backend: result.backend, detail: result.detail }, "ipsec: backend chosen by the ESP probe");
  return result;
}

export async function applyXfrmCommands(
  commands: readonly XfrmCommand[],
  options: { netns?: string; policiesOnly?: boolean } = {},
): Promise<{ applied: number }> {
  let applied = 0;
  for (const command of commands) {
    if (options.policiesOnly && command.kind === "state") continue;
    await run(command.argv, { netns: options.netns });
    applied++;
  }
  return { applied };
}

/** Keeps the last applied model, applies minimal ordered changes, and removes all of it on stop. */
export class KernelXfrm {
  private current: XfrmModel | undefined;

  constructor(private readonly options: { netns?: string; policiesOnly?: boolean } = {}) {}

  async sync(next: XfrmModel): Promise<{ applied: number }> {
    const result = await applyXfrmCommands(planXfrmChanges(this.current, next), this.options);
    this.current = next;
    return result;
  }

  async stop(): Promise<void> {
    await this.sync({ states: [], policies: [], skipped: [] });
  }
}

/** Reads `ip xfrm policy` (text) — used by tests and status. */
export function listXfrmPolicies(netns?: string): Promise<string> {
  return run(["ip", "xfrm", "policy", "show"], { netns });
}
