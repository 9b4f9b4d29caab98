import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  /** Where to write; defaults to stderr so command output on stdout stays parseable. */
  destination?: NodeJS.WritableStream;
}

export const REDACTED = "[redacted]";

/**
 * Fields that hold secrets, whatever object is logged. Only names that mean a secret: a bare
 * `key` is an etcd key, a map key or a service key far more often than a private key (the etcd
 * key of a rejected entry must stay readable), so private keys are caught by the names below and,
 * whatever field they sit in, by their PEM armour (scrubSecrets).
 */
const REDACTED_PATHS = [
  "privateKey",
  "*.privateKey",
  "keyPem",
  "*.keyPem",
  "tls.key",
  "*.tls.key",
  "credentials",
  "*.credentials",
  "password",
  "*.password",
  "token",
  "*.token",
  "bearerToken",
  "*.bearerToken",
  "authorization",
  "*.authorization",
];

/** A PEM private key in any form (PKCS#1, PKCS#8, EC, encrypted, OpenSSH). */
const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

const containsPrivateKey = (text: string) => text.includes("PRIVATE KEY-----") && PRIVATE_KEY_PEM.test(text);

/**
 * Returns `value` with every string (or Buffer) that carries a PEM private key replaced by
 * "[redacted]", copying only what changes. Depth-limited: log objects are small.
 */
export function scrubSecrets<T>(value: T, depth = 0): T {
  if (typeof value === "string") return (containsPrivateKey(value) ? REDACTED : value) as T;
  if (value === null || typeof value !== "object" || depth > 6) return value;
  if (Buffer.isBuffer(value)) return (containsPrivateKey(value.toString("latin1")) ? REDACTED : value) as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, index) => {
      const scrubbed = scrubSecrets(item, depth + 1);
      if (scrubbed !== item) {
        copy ??= [...value];
        copy[index] = scrubbed;
      }
    });
    return (copy ?? value) as T;
  }
  if (value instanceof Error) {
    if (!containsPrivateKey(`${value.message}\n${value.stack ?? ""}`)) return value;
    const copy = new Error(REDACTED);
    copy.name = value.name;
    copy.stack = `${value.name}: ${REDACTED}`;
    return copy as T;
  }
  // only plain objects: class instances (sockets, requests, clients) are neither walked nor copied
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [field, item] of Object.entries(value)) {
    const scrubbed = scrubSecrets(item, depth + 1);
    if (scrubbed !== item) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[field] = scrubbed;
    }
  }
  return (copy ?? value) as T;
}

/** Logging must never throw: a throwing getter leaves the object as it is (the paths still apply). */
function scrubSafely<T>(value: T): T {
  try {
    return scrubSecrets(value);
  } catch {
    // nothing lost: the line is still written, the redaction paths still apply
    return value;
  }
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.MESH_LOG_LEVEL ?? "info";
  const destination = options.destination ?? process.stderr;
  const usePretty = options.pretty ?? Boolean((destination as { isTTY?: boolean }).isTTY);
  const base: pino.LoggerOptions = {
    name: options.name,
    level,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
    formatters: { log: (object) => scrubSafely(object) },
    hooks: {
      // the message text too (e.g. an error message that quotes a file's content)
      logMethod(args, method) {
        // objects are scrubbed by the log formatter; only strings need it here
        const scrubbed = args.map((arg) => (typeof arg === "string" ? scrubSafely(arg) : arg));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
  };
  const logger = usePretty
    ? pino(base, pretty({ sync: true, destination, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" }))
    : pino(base, destination);
  // Child bindings do not pass the log formatter; children inherit this child() from the root.
  const child = logger.child;
  logger.child = function scrubbedChild(this: Logger, bindings, childOptions) {
    return child.call(this, scrubSafely(bindings), childOptions);
  } as typeof logger.child;
  return logger;
}

/** A logger that drops everything: for tests and library callers that did not pass one. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
