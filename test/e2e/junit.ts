/**
 * Counts from the e2e binary's JUnit report (<report-dir>/junit_01.xml). Ginkgo lists every spec of
 * the binary, also those the focus/skip filter left out (as skipped); only the specs the run
 * selected are counted, so "skipped" means skipped at run time (a missing feature, provider, …).
 * Groups are the first words of a spec's text: "[sig-network] Services", "[sig-network] Netpol".
 */

/** notRun: selected but never started (the suite timed out or was interrupted first). */
export type SpecState = "passed" | "failed" | "skipped" | "notRun";

export interface SpecResult {
  name: string;
  group: string;
  state: SpecState;
  seconds: number;
  /** First line of the failure or skip message. */
  message?: string;
}

export interface GroupCounts {
  passed: number;
  failed: number;
  skipped: number;
  notRun: number;
}

const ENTITIES: Record<string, string> = {
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&apos;": "'",
  "&amp;": "&",
};

function unescapeXml(text: string): string {
  return text.replace(/&(lt|gt|quot|apos|amp|#\d+|#x[0-9a-fA-F]+);/g, (entity) => {
    if (entity.startsWith("&#x")) return String.fromCodePoint(Number.parseInt(entity.slice(3, -1), 16));
    if (entity.startsWith("&#")) return String.fromCodePoint(Number.parseInt(entity.slice(2, -1), 10));
    return ENTITIES[entity] ?? entity;
  });
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return match ? unescapeXml(match[1]) : undefined;
}

/** "[sig-network] Services should …" → "[sig-network] Services". */
export function specGroup(name: string): string {
  const words = name.split(/\s+/);
  return words[0]?.startsWith("[") ? words.slice(0, 2).join(" ") : (words[0] ?? "");
}

/**
 * The specs (`[It]` test cases) of a report that the focus selects and the skip does not; suite
 * nodes (BeforeSuite, ReportAfterSuite) are left out. Pure.
 */
export function parseJUnit(xml: string, focus?: RegExp, skip?: RegExp): SpecResult[] {
  const results: SpecResult[] = [];
  const testcase = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let match = testcase.exec(xml); match; match = testcase.exec(xml)) {
    const tag = match[1];
    const body = match[3] ?? "";
    const raw = attribute(tag, "name") ?? "";
    if (!raw.startsWith("[It] ")) continue;
    const name = raw.slice("[It] ".length);
    if (focus && !focus.test(name)) continue;
    if (skip?.test(name)) continue;
    const status = attribute(tag, "status");
    const failed =
      /<(failure|error)\b/.test(body) ||
      ["failed", "panicked", "timedout", "interrupted", "aborted"].includes(status ?? "");
    const skipped = !failed && (/<skipped\b/.test(body) || status === "skipped" || status === "pending");
    let state: SpecState = failed ? "failed" : skipped ? "skipped" : "passed";
    // the message attribute, else the element's text (the framework omits failure messages)
    const element = /<(failure|error|skipped)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    const message = element
      ? (attribute(element[2], "message") || unescapeXml(element[3] ?? ""))
          .trim()
          .split("\n")
          .find((line) => line.trim() !== "")
      : undefined;
    // Ginkgo writes the specs a suite timeout or interrupt left unstarted exactly as those the
    // filter left out: skipped, no time, message "skipped" (a skip at run time has its reason)
    if (state === "skipped" && message === "skipped" && Number(attribute(tag, "time") ?? 0) === 0)
      state = "notRun";
    results.push({
      name,
      group: specGroup(name),
      state,
      seconds: Number(attribute(tag, "time") ?? 0),
      ...(state !== "passed" && message ? { message: message.trim() } : {}),
    });
  }
  return results;
}

/** Counts per group, groups sorted by name. Pure. */
export function countByGroup(results: readonly SpecResult[]): Map<string, GroupCounts> {
  const groups = new Map<string, GroupCounts>();
  for (const result of [...results].sort((a, b) => a.group.localeCompare(b.group))) {
    const counts = groups.get(result.group) ?? { passed: 0, failed: 0, skipped: 0, notRun: 0 };
    counts[result.state]++;
    groups.set(result.group, counts);
  }
  return groups;
}
