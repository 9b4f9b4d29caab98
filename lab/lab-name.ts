/** Lab names: their form, the default, and the one rule by which commands pick an existing lab. */
import { LabConfigError } from "./config-error.js";

export const DEFAULT_LAB_NAME = "lab";
const LAB_NAME = /^[a-z][a-z0-9]{0,7}$/;

export function labNameProblem(name: string): string | undefined {
  return LAB_NAME.test(name)
    ? undefined
    : `"${name}" must be 1-8 lower-case letters or digits, starting with a letter (it prefixes interface names)`;
}

/**
 * The one rule for --name of every command that acts on an existing lab (lab status, down, restart,
 * agent status): the name given; else the only lab there is; else "lab" (also when there is none, so
 * the command then says that no lab "lab" exists). Several labs and none named "lab": the caller must
 * say which. `lab up` creates "lab" unless told otherwise. Pure.
 */
export function chooseLabName(given: string | undefined, existing: string[]): string {
  if (given !== undefined) {
    const problem = labNameProblem(given);
    if (problem) throw new LabConfigError("--name", "", problem);
    return given;
  }
  if (existing.length === 1) return existing[0];
  if (existing.length === 0 || existing.includes(DEFAULT_LAB_NAME)) return DEFAULT_LAB_NAME;
  throw new LabConfigError(
    "--name",
    "",
    `there are ${existing.length} labs (${[...existing].sort().join(", ")}); say which one with --name`,
  );
}
