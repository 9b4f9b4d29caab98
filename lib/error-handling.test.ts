// The error-handling rules of DEVELOPERS.md, checked on the source tree (TypeScript's parser, not
// regular expressions, so strings and comments that merely look like code do not count):
//   1. an empty `catch {}` block says in a comment why nothing is lost;
//   2. so does a `.catch(() => undefined)` / `.catch(() => {})` that drops the error;
//   3. `new SomeError(...)` built from a caught error's message (`error.message`, `String(error)`,
//      `${error}`) passes `{ cause }`, so the original error (stack, errno code) stays reachable.
// Rule 3 covers `new`, not helper functions that build errors (e.g. `badRequest(msg)`): a helper
// may or may not take options, and telling which needs the type checker.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SOURCE_DIRS = [
  "agent",
  "clustermesh-apiserver",
  "cni",
  "cli",
  "lab",
  "lib",
  "bpf",
  "certs",
  "bench",
  "test",
  "scripts",
];

function sourceFiles(dir: string): string[] {
  const found: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    // ENOENT: a folder of the list that this checkout does not have (nothing to check there)
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return found;
    throw error;
  }
  for (const entry of entries) {
    if (entry === "node_modules" || entry === "dist" || entry.startsWith(".")) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...sourceFiles(path));
    else if (/\.(ts|mts|mjs|js)$/.test(entry) && !entry.endsWith(".d.ts")) found.push(path);
  }
  return found;
}

const hasComment = (text: string) => /\/\/|\/\*/.test(text);

/** Names bound to a caught error around `node`: catch clause variables and error-handler parameters. */
function caughtNames(node: ts.Node): Set<string> {
  const names = new Set<string>();
  for (let at: ts.Node | undefined = node; at; at = at.parent) {
    if (ts.isCatchClause(at) && at.variableDeclaration && ts.isIdentifier(at.variableDeclaration.name))
      names.add(at.variableDeclaration.name.text);
    if ((ts.isArrowFunction(at) || ts.isFunctionExpression(at)) && isErrorHandler(at)) {
      const first = at.parameters[0];
      if (first && ts.isIdentifier(first.name)) names.add(first.name.text);
    }
  }
  return names;
}

/** `p.catch(fn)`, `p.then(_, fn)`, `emitter.on("error" | "disconnected", fn)`. */
function isErrorHandler(fn: ts.Node): boolean {
  const call = fn.parent;
  if (!call || !ts.isCallExpression(call) || !ts.isPropertyAccessExpression(call.expression)) return false;
  const method = call.expression.name.text;
  if (method === "catch") return call.arguments[0] === fn;
  if (method === "then") return call.arguments[1] === fn;
  if (method === "on" || method === "once") {
    const event = call.arguments[0];
    return call.arguments[1] === fn && ts.isStringLiteral(event) && /error|disconnected/.test(event.text);
  }
  return false;
}

function unwrap(node: ts.Expression): ts.Expression {
  let at = node;
  while (ts.isParenthesizedExpression(at) || ts.isAsExpression(at) || ts.isNonNullExpression(at))
    at = at.expression;
  return at;
}

/** Whether `node` turns the caught error into text: `e.message`, `String(e)`, `${e}`. */
function stringifiesCaught(node: ts.Node, names: Set<string>): boolean {
  const isCaught = (expression: ts.Expression) => {
    const inner = unwrap(expression);
    return ts.isIdentifier(inner) && names.has(inner.text);
  };
  let found = false;
  const visit = (at: ts.Node) => {
    if (found) return;
    if (ts.isPropertyAccessExpression(at) && at.name.text === "message" && isCaught(at.expression))
      found = true;
    else if (
      ts.isCallExpression(at) &&
      ts.isIdentifier(at.expression) &&
      at.expression.text === "String" &&
      at.arguments.length === 1 &&
      isCaught(at.arguments[0])
    )
      found = true;
    else if (ts.isTemplateSpan(at) && isCaught(at.expression)) found = true;
    else ts.forEachChild(at, visit);
  };
  visit(node);
  return found;
}

function passesCause(call: ts.NewExpression): boolean {
  return (call.arguments ?? []).some(
    (argument) =>
      ts.isObjectLiteralExpression(argument) &&
      argument.properties.some(
        (property) => property.name !== undefined && property.name.getText() === "cause",
      ),
  );
}

/** Every violation in one file's text, as "file:line: what". */
export function errorHandlingViolations(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const violations: string[] = [];
  const report = (node: ts.Node, what: string) =>
    violations.push(
      `${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}: ${what}`,
    );
  const visit = (node: ts.Node) => {
    if (ts.isCatchClause(node) && node.block.statements.length === 0) {
      const inside = text.slice(node.block.getStart(source) + 1, node.block.end - 1);
      if (!hasComment(inside)) report(node, "empty catch block without a comment saying why nothing is lost");
    }
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      node.expression.name.text === "catch" &&
      node.arguments.length === 1
    ) {
      const handler = node.arguments[0];
      const dropsError =
        (ts.isArrowFunction(handler) || ts.isFunctionExpression(handler)) &&
        handler.parameters.length === 0 &&
        ((ts.isBlock(handler.body) && handler.body.statements.length === 0) ||
          (ts.isIdentifier(handler.body) && handler.body.text === "undefined"));
      if (dropsError) {
        // the comment goes on the line before the statement, or inside the call
        const lineStarts = source.getLineStarts();
        let statement: ts.Node = node;
        while (statement.parent && !ts.isBlock(statement.parent) && !ts.isSourceFile(statement.parent))
          statement = statement.parent;
        const statementLine = source.getLineAndCharacterOfPosition(statement.getStart(source)).line;
        const from = lineStarts[Math.max(0, statementLine - 1)];
        if (!hasComment(text.slice(from, node.end)))
          report(node, ".catch(() => …) drops the error without a comment saying why nothing is lost");
      }
    }
    if (ts.isNewExpression(node) && !passesCause(node)) {
      const names = caughtNames(node);
      if (names.size > 0 && (node.arguments ?? []).some((argument) => stringifiesCaught(argument, names)))
        report(
          node,
          `new ${node.expression.getText(source)}(…) re-wraps a caught error's message without { cause }`,
        );
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return violations;
}

describe("error handling rules (DEVELOPERS.md)", () => {
  it("finds what it is meant to find, and nothing else", () => {
    const bad = [
      "try { f(); } catch {}",
      "try { f(); } catch (e) {}",
      "p.catch(() => undefined);",
      "p.catch(() => {});",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source under test, not a template
      "try { f(); } catch (error) { throw new Error(`reading x: ${(error as Error).message}`); }",
      "try { f(); } catch (err) { throw new TypedError('x', String(err)); }",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source under test, not a template
      "try { f(); } catch (e) { throw new Error(`x: ${e}`); }",
      "p.catch((error) => { throw new Error(error.message); });",
      "s.on('error', (error) => reject(new UapiError('wg0', error.message)));",
    ];
    for (const code of bad) assert.equal(errorHandlingViolations("x.ts", code).length, 1, code);
    const good = [
      "try { f(); } catch {\n  // ENOENT: already removed\n}",
      "// the caller gets the error through `next`\nq = next.catch(() => undefined);",
      "p.catch((error) => log.warn({ err: error }, 'x'));",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source under test, not a template
      "try { f(); } catch (error) { throw new Error(`x: ${(error as Error).message}`, { cause: error }); }",
      "try { f(); } catch (error) { throw new Error('reading x failed', { cause: error }); }",
      "try { f(); } catch (error) { status = (error as Error).message; }",
      "const text = 'catch {}'; // a string, not code",
      "function g(e: Error) { return new Error(e.message); }",
    ];
    for (const code of good) assert.deepEqual(errorHandlingViolations("x.ts", code), [], code);
  });

  it("the source tree follows them", () => {
    const violations = SOURCE_DIRS.flatMap((dir) => sourceFiles(join(ROOT, dir))).flatMap((path) =>
      errorHandlingViolations(relative(ROOT, path), readFileSync(path, "utf8")),
    );
    assert.deepEqual(
      violations,
      [],
      `fix each, see DEVELOPERS.md (errors keep their cause):\n${violations.join("\n")}`,
    );
  });
});
