/**
 * The package's version (meshctl, the agent and the clustermesh-apiserver print it): the package version from package.json and the git commit it was built
 * from. The commit is read, cheaply and without running git, from the checkout's .git when there is
 * one (a clone or a worktree: HEAD, then the loose ref or packed-refs), else from dist/build-info.json
 * which `npm run build` and `npm pack` stamp (scripts/stamp-build-info.mjs) for an installed package
 * that has no .git. Only node:fs — loaded for `--version` and `--help` too.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/lib/version.js → the package root (where package.json and .git are). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BUILD_INFO_FILE = join(PACKAGE_ROOT, "dist", "build-info.json");

export interface ClientVersion {
  version: string;
  /** 40 hex digits, or "unknown". */
  commit: string;
  /** Where the commit came from: the checkout's .git, the stamp written at build time, or nowhere. */
  commitSource: "git" | "build-info" | "unknown";
}

export function packageVersion(root = PACKAGE_ROOT): string {
  try {
    return (
      (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string }).version ??
      "unknown"
    );
  } catch {
    // A package without a readable package.json still answers --version; "unknown" says so.
    return "unknown";
  }
}

const SHA = /^[0-9a-f]{40}$/;

function readTrimmed(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** The commit HEAD points at in the checkout at `root`, read from its .git; undefined without one. */
export function gitCommit(root: string): string | undefined {
  const dotGit = join(root, ".git");
  if (!existsSync(dotGit)) return undefined;
  // A worktree's (or submodule's) .git is a file "gitdir: <path>"; its refs live in the common dir.
  let gitDir = dotGit;
  if (statSync(dotGit).isFile()) {
    const pointer = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"));
    if (!pointer) return undefined;
    gitDir = resolve(root, pointer[1].trim());
  }
  const common = readTrimmed(join(gitDir, "commondir"));
  const commonDir = common ? resolve(gitDir, common) : gitDir;
  const head = readTrimmed(join(gitDir, "HEAD"));
  if (!head) return undefined;
  if (SHA.test(head)) return head; // detached HEAD
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
  if (!ref) return undefined;
  for (const dir of [gitDir, commonDir]) {
    const loose = readTrimmed(join(dir, ref));
    if (loose && SHA.test(loose)) return loose;
  }
  const packed = readTrimmed(join(commonDir, "packed-refs")) ?? "";
  for (const line of packed.split("\n")) {
    const [sha, name] = line.split(" ");
    if (name === ref && SHA.test(sha)) return sha;
  }
  return undefined;
}

function stampedCommit(file: string): string | undefined {
  try {
    const commit = (JSON.parse(readFileSync(file, "utf8")) as { commit?: unknown }).commit;
    return typeof commit === "string" && SHA.test(commit) ? commit : undefined;
  } catch {
    // No stamp (a plain `tsc` build) or an unreadable one: the caller reports "unknown".
    return undefined;
  }
}

/** The version and the commit (reading .git, else the stamp): for `meshctl version`. */
export function clientVersion(root = PACKAGE_ROOT, buildInfo = BUILD_INFO_FILE): ClientVersion {
  const fromGit = gitCommit(root);
  if (fromGit) return { version: packageVersion(root), commit: fromGit, commitSource: "git" };
  const stamped = stampedCommit(buildInfo);
  if (stamped) return { version: packageVersion(root), commit: stamped, commitSource: "build-info" };
  return { version: packageVersion(root), commit: "unknown", commitSource: "unknown" };
}

/** One line for a program's --version: "<program> <version> (commit <12 hex digits>)". */
export function versionLine(program: string): string {
  const { version, commit } = clientVersion();
  return `${program} ${version} (commit ${commit === "unknown" ? commit : commit.slice(0, 12)})`;
}
