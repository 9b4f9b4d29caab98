// The import rule between the folders, and no import cycles between files or folders. A unit test
// (no root): it reads the TypeScript sources, so a forbidden import fails `npm test` before anything
// runs, naming the file, the import and the rule.
//
// The rule (also in README.md, "Layout"):
//   programs      agent/, clustermesh-apiserver/, cni/, cli/, lab/
//   shared layers lib/ (with the contracts in lib/api/), bpf/, certs/
//   1. A program imports only the shared layers and its own folder, never another program.
//      cni/ imports only node built-ins and lib/api/cni-protocol.ts (a small binary, later in C).
//      The one exception: meshctl hosts the lab's verbs, so cli/commands/lab*.ts may import lab/
//      (lazily, for the commands that need it); nothing else in cli/ does.
//   2. A shared layer imports only shared layers. The contracts (lib/api/) import only node
//      built-ins, @kubernetes/client-node's types and each other: any program can take them.
//   3. Product code (programs and shared layers) never imports test/, testing/ or bench/.
//      A test next to the code (*.test.ts) follows its folder's rule and may also import testing/.
//   4. testing/ holds harnesses used by tests and benches (an agent against an in-process API
//      server, a throwaway lab): it may import anything but test/ and bench/.
//      test/ (end-to-end suites) may import anything but bench/; bench/ anything but test/.
//   5. No cycles: no file imports itself through other files, no folder through other folders.
//   6. prom-client is imported only by lib/metrics/, and cli/ never imports lib/metrics/: meshctl
//      serves no metrics, and its --help stays fast (bench/cli.ts).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, normalize, relative, sep } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROGRAMS = new Set(["agent", "clustermesh-apiserver", "cni", "cli", "lab"]);
const SHARED = new Set(["lib", "bpf", "certs"]);
const SKIP = new Set(["node_modules", "dist", ".git"]);

export interface Import {
  from: string;
  /** what the file writes */
  specifier: string;
  /** the repository file it names (relative imports only) */
  target?: string;
}

function sourceFiles(dir = ""): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir))) {
    if (SKIP.has(entry) || entry.startsWith(".")) continue;
    const path = dir ? `${dir}/${entry}` : entry;
    if (statSync(join(ROOT, path)).isDirectory()) files.push(...sourceFiles(path));
    else if (path.endsWith(".ts") && !path.endsWith(".d.ts")) files.push(path);
  }
  return files;
}

/** Every import, re-export and dynamic import() of a file, as TypeScript's pre-processor reads them. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles.map(({ fileName: specifier }) => {
    if (!specifier.startsWith(".")) return { from: file, specifier };
    const target = normalize(join(dirname(file), specifier))
      .split(sep)
      .join("/")
      .replace(/\.js$/, ".ts");
    return { from: file, specifier, target };
  });
}

const top = (path: string) => path.split("/")[0];
const isTest = (path: string) => path.endsWith(".test.ts");

/** Why an import breaks the rule, or undefined when it keeps it. */
export function ruleBroken({ from, specifier, target }: Import): string | undefined {
  const source = top(from);
  if (target === undefined) {
    const builtin = specifier.startsWith("node:") || builtinModules.includes(specifier);
    if (source === "cni" && !isTest(from) && !builtin)
      return "cni/ imports only node built-ins and lib/api/cni-protocol.ts";
    if (from.startsWith("lib/api/") && !isTest(from) && !builtin && specifier !== "@kubernetes/client-node")
      return "lib/api/ (the contracts) imports only node built-ins, client-node types and lib/api/";
    if (specifier === "prom-client" && !from.startsWith("lib/metrics/"))
      return "only lib/metrics/ imports prom-client";
    return undefined;
  }
  const dest = top(target);
  if (source === "cli" && target.startsWith("lib/metrics/"))
    return "cli/ never imports lib/metrics/ (prom-client: meshctl serves no metrics)";
  if (source === "test") return dest === "bench" ? "test/ never imports bench/" : undefined;
  if (source === "bench")
    return dest === "test" ? "bench/ never imports test/ (shared harnesses live in testing/)" : undefined;
  if (source === "testing")
    return dest === "test" || dest === "bench" ? "testing/ never imports test/ or bench/" : undefined;
  if (!PROGRAMS.has(source) && !SHARED.has(source)) return undefined; // scripts, config
  if (dest === "test" || dest === "bench")
    return isTest(from)
      ? "a test next to the code imports harnesses from testing/, never test/ or bench/"
      : "product code never imports test/ or bench/";
  if (dest === "testing")
    return isTest(from) ? undefined : "only tests (*.test.ts) import testing/; product code never does";
  if (source === "cni" && !isTest(from) && dest !== "cni" && target !== "lib/api/cni-protocol.ts")
    return "cni/ imports only node built-ins and lib/api/cni-protocol.ts";
  if (from.startsWith("lib/api/") && !isTest(from) && !target.startsWith("lib/api/"))
    return "lib/api/ (the contracts) imports only node built-ins, client-node types and lib/api/";
  if (SHARED.has(source) && !SHARED.has(dest))
    return "a shared layer (lib/, bpf/, certs/) imports only shared layers";
  if (PROGRAMS.has(dest) && dest !== source) {
    if (dest === "lab" && /^cli\/commands\/lab[^/]*\.ts$/.test(from) && !isTest(from)) return undefined;
    return dest === "lab" && source === "cli"
      ? "only cli/commands/lab*.ts imports lab/ (pass lab facts through cli/commands/lab-facts.ts)"
      : "a program imports only lib/ (with lib/api/), bpf/, certs/ and its own folder, never another program";
  }
  return undefined;
}

/** Strongly connected components with more than one member (Tarjan), each sorted. */
export function cycles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const to of edges.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node) as number, index.get(to) as number));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of [...edges.keys()].sort()) if (!index.has(node)) visit(node);
  return found;
}

function describeCycle(members: string[], edges: ReadonlyMap<string, ReadonlySet<string>>): string {
  const inside = new Set(members);
  const arrows = members.flatMap((from) =>
    [...(edges.get(from) ?? [])].filter((to) => inside.has(to)).map((to) => `${from} -> ${to}`),
  );
  return `${members.join(", ")}\n    ${arrows.join("\n    ")}`;
}

describe("import rule", () => {
  const files = sourceFiles();
  const known = new Set(files);
  const imports = files.flatMap(importsOf);

  it("reads the whole tree (every top folder's sources)", () => {
    for (const folder of [...PROGRAMS, ...SHARED, "test", "testing", "bench"])
      assert.ok(
        files.some((f) => top(f) === folder),
        `no .ts file found under ${folder}/ (from ${relative(process.cwd(), ROOT) || "."})`,
      );
    const unresolved = imports.filter((i) => i.target !== undefined && !known.has(i.target));
    assert.deepEqual(
      unresolved.map((i) => `${i.from}: "${i.specifier}"`),
      [],
      "relative imports must name a .ts file of the tree",
    );
  });

  it("programs import only the shared layers; product code never imports test/, testing/, bench/", () => {
    const broken = imports
      .map((i) => ({ i, rule: ruleBroken(i) }))
      .filter((b) => b.rule !== undefined)
      .map(({ i, rule }) => `${i.from} imports "${i.specifier}": ${rule}`);
    assert.deepEqual(
      broken,
      [],
      `forbidden imports (rule in test/import-rule.test.ts):\n${broken.join("\n")}`,
    );
  });

  it("no file imports itself through others", () => {
    const edges = new Map<string, Set<string>>(files.map((f) => [f, new Set<string>()]));
    for (const i of imports) if (i.target && known.has(i.target)) edges.get(i.from)?.add(i.target);
    const found = cycles(edges).map((c) => describeCycle(c, edges));
    assert.deepEqual(found, [], `file cycles:\n  ${found.join("\n  ")}`);
  });

  it("no folder imports itself through others (tests left out)", () => {
    const found: string[] = [];
    for (const [depth, edges] of folderGraphs(
      imports.filter((i) => i.target && known.has(i.target) && !isTest(i.from)),
    ))
      for (const cycle of cycles(edges)) found.push(`at depth ${depth}: ${describeCycle(cycle, edges)}`);
    assert.deepEqual(found, [], `folder cycles:\n  ${found.join("\n  ")}`);
  });
});

/**
 * The folder graph at each depth: every file stands for its folder cut to `depth` segments
 * (agent/encryption/ipsec/xfrm.ts is agent/ at depth 1, agent/encryption at depth 2), so a loop
 * through a subfolder counts for its parent. A folder's imports from its own subfolders (and back)
 * are inside that folder, not between folders.
 */
export function folderGraphs(imports: readonly Import[]): Map<number, Map<string, Set<string>>> {
  const graphs = new Map<number, Map<string, Set<string>>>();
  const folderOf = (file: string, depth: number) => dirname(file).split("/").slice(0, depth).join("/");
  const nested = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  const maxDepth = Math.max(...imports.map((i) => dirname(i.from).split("/").length));
  for (let depth = 1; depth <= maxDepth; depth++) {
    const edges = new Map<string, Set<string>>();
    for (const i of imports) {
      const from = folderOf(i.from, depth);
      const to = folderOf(i.target as string, depth);
      if (from === "." || to === "." || nested(from, to)) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
    }
    graphs.set(depth, edges);
  }
  return graphs;
}

describe("import rule: the rule itself", () => {
  const check = (from: string, target: string) => ruleBroken({ from, specifier: target, target });
  it("refuses a program importing another, and allows the shared layers", () => {
    assert.match(
      check("clustermesh-apiserver/apiserver.ts", "agent/k8s/ensure-crds.ts") ?? "",
      /never another program/,
    );
    assert.equal(check("clustermesh-apiserver/apiserver.ts", "lib/api/crds.ts"), undefined);
    assert.match(check("lib/cidr.ts", "agent/config.ts") ?? "", /shared layer/);
    assert.match(check("lib/api/crds.ts", "lib/k8s/client.ts") ?? "", /lib\/api\/ \(the contracts\)/);
  });
  it("lets only cli/commands/lab*.ts reach lab/, and product code never testing/", () => {
    assert.equal(check("cli/commands/lab-facts.ts", "lab/state.ts"), undefined);
    assert.match(check("cli/commands/agent.ts", "lab/state.ts") ?? "", /only cli\/commands\/lab\*\.ts/);
    assert.match(check("agent/agent.ts", "testing/agent-cluster.ts") ?? "", /only tests/);
    assert.equal(check("agent/agent.root.test.ts", "testing/agent-cluster.ts"), undefined);
    assert.match(check("bench/cni.ts", "test/cluster.root.test.ts") ?? "", /bench\/ never imports test\//);
  });
  it("keeps prom-client in lib/metrics/ and out of meshctl", () => {
    assert.equal(ruleBroken({ from: "lib/metrics/registry.ts", specifier: "prom-client" }), undefined);
    assert.match(
      ruleBroken({ from: "agent/agent.ts", specifier: "prom-client" }) ?? "",
      /only lib\/metrics\//,
    );
    assert.equal(check("agent/agent.ts", "lib/metrics/registry.ts"), undefined);
    assert.match(check("cli/main.ts", "lib/metrics/registry.ts") ?? "", /cli\/ never imports lib\/metrics\//);
  });
  it("keeps cni/ to node built-ins and the protocol", () => {
    assert.equal(ruleBroken({ from: "cni/main.ts", specifier: "node:fs" }), undefined);
    assert.match(ruleBroken({ from: "cni/main.ts", specifier: "yaml" }) ?? "", /cni\/ imports only/);
    assert.match(check("cni/main.ts", "lib/log.ts") ?? "", /cni\/ imports only/);
  });
  it("finds a cycle and names its files", () => {
    const edges = new Map([
      ["a", new Set(["b"])],
      ["b", new Set(["c"])],
      ["c", new Set(["a"])],
      ["d", new Set(["a"])],
    ]);
    assert.deepEqual(cycles(edges), [["a", "b", "c"]]);
  });
});
