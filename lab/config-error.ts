/** A bad input: names the file (or flag) and the field, so the message alone says what to fix. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly field: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${source}: ${field ? `${field}: ` : ""}${problem}`, options);
    this.name = "ConfigError";
  }
}
