/**
 * What a policy's status says about it, for the agent to write (the CRD's schema refuses what it can;
 * the rest is found here): one condition in the Kubernetes shape, `Valid` false with every field
 * error, or true with the warnings of what is accepted but not enforced as written.
 */
import { type FieldErrors, fieldErrorText } from "./errors.js";
import type { ParsedPolicy } from "./rules.js";

export interface PolicyCondition {
  type: "Valid";
  status: "True" | "False";
  reason: "Valid" | "ValidWithWarnings" | "InvalidPolicy";
  message: string;
}

/** The condition for a parse result (parsePolicy's `{ policy, errors }`). */
export function policyCondition(result: { policy?: ParsedPolicy; errors: FieldErrors }): PolicyCondition {
  if (!result.policy || result.errors.list.length > 0)
    return {
      type: "Valid",
      status: "False",
      reason: "InvalidPolicy",
      message: `not enforced: ${result.errors.list.map(fieldErrorText).join("; ")}`,
    };
  const warnings = result.policy.warnings;
  if (warnings.length > 0)
    return {
      type: "Valid",
      status: "True",
      reason: "ValidWithWarnings",
      message: `enforced, with: ${warnings.map(fieldErrorText).join("; ")}`,
    };
  return { type: "Valid", status: "True", reason: "Valid", message: "enforced" };
}
