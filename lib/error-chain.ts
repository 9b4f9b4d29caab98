/**
 * An error and its causes (`new Error(message, { cause })`) as text a person reads once: the
 * message, then each cause whose message the outer one does not already contain, e.g.
 *   "cannot read the cluster state from etcd: no answer within 5000 ms
 *     caused by: connect ECONNREFUSED 127.0.0.1:2379"
 */
export function formatErrorChain(error: unknown): string {
  return chainMessages(error)
    .map((message, index) => (index === 0 ? message : `  caused by: ${firstLine(message)}`))
    .join("\n");
}

/** A cause's first line: parsers append code frames that say nothing more to a reader. */
function firstLine(message: string): string {
  return message.split("\n", 1)[0];
}

/** The same on one line ("outer: cause: root cause"), for status fields and table cells. */
export function errorChainSummary(error: unknown): string {
  return chainMessages(error).join(": ");
}

function chainMessages(error: unknown): string[] {
  const lines: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    const message = messageOf(current);
    // a wrapper that already quotes its cause's message need not repeat it
    if (lines.length === 0 || !lines.some((line) => line.includes(message))) lines.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines;
}

function messageOf(value: unknown): string {
  if (value instanceof AggregateError && !value.message)
    return value.errors.map((error) => messageOf(error)).join("; ");
  if (value instanceof Error) return value.message || value.name;
  return String(value);
}
