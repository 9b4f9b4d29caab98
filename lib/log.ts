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

// Field names that must never reach a log line, whatever object is logged.
const REDACTED_PATHS = [
  "key",
  "privateKey",
  "*.key",
  "*.privateKey",
  "*.tls.key",
  "*.keyPem",
  "keyPem",
  "password",
  "*.password",
];

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.MESH_LOG_LEVEL ?? "info";
  const destination = options.destination ?? process.stderr;
  const usePretty = options.pretty ?? Boolean((destination as { isTTY?: boolean }).isTTY);
  const base = { name: options.name, level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } };
  if (usePretty) {
    return pino(
      base,
      pretty({ sync: true, destination, ignore: "pid,hostname", translateTime: "HH:MM:ss.l" }),
    );
  }
  return pino(base, destination);
}

/** A logger that drops everything: for tests and library callers that did not pass one. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
