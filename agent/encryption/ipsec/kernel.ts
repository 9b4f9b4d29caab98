/**
 * Kernel IPsec: the capability probe (does this kernel do ESP with rfc4106?) that picks the
 * backend, and applying the XFRM model's commands in a netns. On kernels without ESP (this
 * machine) states cannot be installed, but policies can: the policies-only mode installs them so
 * that traffic that must be encrypted is blocked rather than sent plain.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { CommandError, run } from "../../../lib/exec.js";
import type { Logger } from "../../../lib/log.js";
import { planXfrmChanges, withoutKeyMaterial, type XfrmCommand, type XfrmModel } from "./xfrm.js";

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
    await run(["ip", "netns", "del", netns]).catch((error) =>
      log?.warn({ netns, err: error }, "ipsec: removing the ESP probe's netns failed"),
    );
  }
  log?.info({ backend: result.backend, detail: result.detail }, "ipsec: backend chosen by the ESP probe");
  return result;
}

const ALREADY_EXISTS = /File exists/;
const NOT_FOUND = /No such process|No such file or directory|not found/i;

/**
 * Runs the commands in order. Re-running a plan is safe: policies are `update`s, a state add that
 * meets a state of the same id (left by a failed sync or an earlier agent) replaces it, and a
 * delete of something already gone is done.
 */
export async function applyXfrmCommands(
  commands: readonly XfrmCommand[],
  options: { netns?: string; policiesOnly?: boolean } = {},
): Promise<{ applied: number }> {
  let applied = 0;
  for (const command of commands) {
    if (options.policiesOnly && command.kind === "state") continue;
    try {
      await run(command.argv, { netns: options.netns });
    } catch (error) {
      const stderr = error instanceof CommandError ? error.stderr : "";
      const verb = command.argv[3];
      if (verb === "delete" && NOT_FOUND.test(stderr)) continue;
      if (!(command.replaces && ALREADY_EXISTS.test(stderr))) throw error;
      await run(command.replaces, { netns: options.netns });
      await run(command.argv, { netns: options.netns });
    }
    applied++;
  }
  return { applied };
}

/**
 * Keeps the last applied model (optionally persisted without key material, so an agent restart
 * diffs against what is installed instead of re-adding it), applies minimal ordered changes, and
 * removes all of it on `remove`. A failed apply keeps the previous model: the next sync re-plans
 * from it, which the tolerant apply makes safe.
 */
export class KernelXfrm {
  private current: XfrmModel | undefined;

  constructor(private readonly options: { netns?: string; policiesOnly?: boolean; modelFile?: string } = {}) {
    if (options.modelFile && existsSync(options.modelFile)) {
      try {
        this.current = JSON.parse(readFileSync(options.modelFile, "utf8")) as XfrmModel;
      } catch {
        // unreadable: start from nothing; the re-runnable apply puts everything (back) in place
        this.current = undefined;
      }
    }
  }

  get model(): XfrmModel | undefined {
    return this.current;
  }

  async sync(next: XfrmModel): Promise<{ applied: number }> {
    const result = await applyXfrmCommands(planXfrmChanges(this.current, next), this.options);
    this.current = next;
    if (this.options.modelFile) {
      // written whole or not at all: a crash mid-write must not leave half a model
      const partial = `${this.options.modelFile}.tmp`;
      writeFileSync(partial, JSON.stringify(withoutKeyMaterial(next)), { mode: 0o600 });
      renameSync(partial, this.options.modelFile);
    }
    return result;
  }

  /**
   * Drops from the model the states the kernel no longer holds (flushed by hand, say), so the
   * next sync adds them again; returns how many. Policies are not read back.
   */
  forgetMissingStates(installed: readonly InstalledXfrmState[]): number {
    if (!this.current) return 0;
    const present = new Set(installed.map((s) => `${s.src}>${s.dst}>${s.spi}`));
    const kept = this.current.states.filter((s) => present.has(`${s.src}>${s.dst}>${s.spi}`));
    const missing = this.current.states.length - kept.length;
    if (missing > 0) this.current = { ...this.current, states: kept };
    return missing;
  }

  /** Removes every state and policy of the model (and the persisted copy). */
  async remove(): Promise<void> {
    await this.sync({ states: [], policies: [], skipped: [] });
    if (this.options.modelFile) rmSync(this.options.modelFile, { force: true });
  }
}

/** Reads `ip xfrm policy` (text) — used by tests. */
export function listXfrmPolicies(netns?: string): Promise<string> {
  return run(["ip", "xfrm", "policy", "show"], { netns });
}

export interface InstalledXfrmState {
  src: string;
  dst: string;
  spi: number;
}

/** Parses `ip xfrm state show` (each state starts with a `src … dst …` line, then `proto esp spi …`). */
export function parseXfrmStates(text: string): InstalledXfrmState[] {
  const states: InstalledXfrmState[] = [];
  let pair: { src: string; dst: string } | undefined;
  for (const line of text.split("\n")) {
    const head = /^src (\S+) dst (\S+)/.exec(line);
    if (head) {
      pair = { src: head[1], dst: head[2] };
      continue;
    }
    const spi = /^\s+proto esp spi (0x[0-9a-f]+)/.exec(line);
    if (spi && pair) states.push({ ...pair, spi: Number.parseInt(spi[1], 16) });
  }
  return states;
}

/** The ESP states the kernel holds (status: what is really installed, not what was planned). */
export async function listXfrmStates(netns?: string): Promise<InstalledXfrmState[]> {
  return parseXfrmStates(await run(["ip", "xfrm", "state", "show"], { netns }));
}
