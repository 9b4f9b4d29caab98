import { UsageError } from "../lib/usage-error.js";

/** A bad lab input (kind config, mesh file, lab flag): names the file (or flag) and the field, so the message alone says what to fix. */
export class LabConfigError extends UsageError {
  constructor(
    readonly source: string,
    readonly field: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${source}: ${field ? `${field}: ` : ""}${problem}`, options);
    this.name = "LabConfigError";
  }
}
