/** One entry point for every policy kind the mesh enforces. Pure. */
import { parseCiliumPolicy } from "./cilium-policy.js";
import { FieldErrors } from "./errors.js";
import { type ParseOptions, parseNetworkPolicy } from "./network-policy.js";
import type { ParsedPolicy } from "./rules.js";

export type { ParseOptions } from "./network-policy.js";

/** Parses an object of any supported kind (by `kind`); unknown kinds are an error on `kind`. */
export function parsePolicy(
  object: unknown,
  options: ParseOptions,
): { policy?: ParsedPolicy; errors: FieldErrors } {
  const kind = (object as { kind?: unknown } | null)?.kind;
  if (kind === "NetworkPolicy") return parseNetworkPolicy(object, options);
  if (kind === "CiliumNetworkPolicy" || kind === "CiliumClusterwideNetworkPolicy")
    return parseCiliumPolicy(object, options);
  const errors = new FieldErrors();
  errors.add(
    "kind",
    `must be NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (got ${JSON.stringify(kind)})`,
  );
  return { errors };
}
