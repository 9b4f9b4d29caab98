/**
 * meshctl as a user runs it (dist/cli/main.js in a child process), for everything that needs neither
 * root nor a cluster: help and version, and bad input refused with one line naming the flag and the
 * fix before anything is created or reached. Labs are looked up under a temporary
 * MESH_LAB_STATE_ROOT, so a developer's labs never count.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const MAIN = join(dirname(fileURLToPath(import.meta.url)), "main.js");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe("meshctl (no root, no cluster)", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const meshctl = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Run => {
    const result = spawnSync(process.execPath, [MAIN, ...args], {
      encoding: "utf8",
      env: { ...env, ...extraEnv },
      timeout: 60_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  /** A lab record as `lab up` leaves it, enough for the name rule and the node lookup. */
  const fakeLab = (root: string, name: string) => {
    mkdirSync(join(root, name), { recursive: true });
    writeFileSync(
      join(root, name, "state.json"),
      JSON.stringify({
        name,
        createdAt: new Date().toISOString(),
        complete: true,
        plan: {
          name,
          bridge: { name: `${name}-br`, address: "172.31.99.1/24", subnet: "172.31.99.0/24" },
          clusters: [{ name: "c1", id: 1, nodes: [{ name: "c1-control-plane", role: "control-plane" }] }],
          blackholes: [],
        },
        resources: [],
      }),
    );
  };
  const oneLine = (run: Run) => {
    assert.equal(run.stderr.trim().split("\n").length, 1, `one line: ${run.stderr}`);
    return run.stderr;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "meshctl-cli-"));
    mkdirSync(join(dir, "labs"));
    env = { ...process.env, MESH_LAB_STATE_ROOT: join(dir, "labs"), KUBECONFIG: join(dir, "kubeconfig") };
    writeFileSync(
      join(dir, "kubeconfig"),
      // An API server nobody listens on: any command that reached it would fail differently.
      "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:9'}\nusers:\n- name: x\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\ncurrent-context: x\n",
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("has help text for every command", () => {
    const commands = [
      [],
      ["lab"],
      ["lab", "up"],
      ["lab", "down"],
      ["lab", "status"],
      ["lab", "restart"],
      ["clustermesh"],
      ["clustermesh", "enable"],
      ["clustermesh", "disable"],
      ["clustermesh", "connect"],
      ["clustermesh", "disconnect"],
      ["clustermesh", "status"],
      ["agent"],
      ["agent", "status"],
      ["version"],
      ["install"],
      ["uninstall"],
      ["status"],
      ["policy"],
      ["policy", "trace"],
    ];
    for (const command of commands) {
      const help = meshctl([...command, "--help"]);
      assert.equal(help.status, 0, `${command.join(" ")} --help: ${help.stderr}`);
      assert.match(help.stdout, /^Usage: meshctl/);
      // Every option and subcommand line carries a description.
      for (const line of help.stdout.split("\n").filter((l) => /^ {2}\S/.test(l))) {
        assert.match(line, /^ {2}\S.*\S {2,}\S/, `${command.join(" ")}: no description in "${line}"`);
      }
    }
    assert.match(meshctl(["lab", "up", "--help"]).stdout, /auto .*kernel-xfrm.*libipsec/s);
  });

  it("prints the version and the commit, as text and JSON", () => {
    const json = meshctl(["version", "-o", "json"]);
    assert.equal(json.status, 0, json.stderr);
    const report = JSON.parse(json.stdout);
    assert.equal(report.client.version, meshctl(["--version"]).stdout.trim());
    const git = spawnSync("git", ["rev-parse", "HEAD"], { cwd: dirname(MAIN), encoding: "utf8" });
    if (git.status === 0) {
      assert.equal(report.client.commit, git.stdout.trim());
      assert.equal(report.client.commitSource, "git");
    }
    assert.match(
      meshctl(["version"]).stdout,
      new RegExp(`^meshctl ${report.client.version}, commit [0-9a-f]{40} `),
    );
  });

  it("applies one --name rule to lab and agent commands", () => {
    const root = join(dir, "labs");
    // No lab: "lab", and the hint names it.
    const none = meshctl(["lab", "status"]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /No lab named "lab"; create one with: meshctl lab up --name lab/);
    // The only lab is the default of every command.
    fakeLab(root, "one");
    const status = meshctl(["lab", "status", "-o", "json"]);
    assert.equal(status.status, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).name, "one");
    const agent = meshctl(["agent", "status", "--node", "nope"]);
    assert.equal(agent.status, 2);
    assert.match(oneLine(agent), /lab "one" has no node "nope" \(nodes: c1-control-plane\)/);
    // Several labs: every command asks which.
    fakeLab(root, "two");
    for (const args of [
      ["lab", "status"],
      ["lab", "down"],
      ["lab", "restart", "agent", "--all"],
      ["agent", "status", "--node", "c1-control-plane"],
    ]) {
      const run = meshctl(args);
      assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(oneLine(run), /--name: there are 2 labs \(one, two\); say which one with --name/);
    }
    rmSync(join(root, "two"), { recursive: true });
    rmSync(join(root, "one"), { recursive: true });
  });

  it("lab restart says where, or needs --all", () => {
    const run = meshctl(["lab", "restart", "agent", "--name", "nolab"]);
    assert.equal(run.status, 2);
    assert.match(
      oneLine(run),
      /say where to restart agent: --node <node>, --cluster <cluster>, or --all .*meshctl lab restart agent --name nolab --all/,
    );
    const both = meshctl(["lab", "restart", "agent", "--name", "nolab", "--all", "--node", "n"]);
    assert.equal(both.status, 2);
    assert.match(oneLine(both), /--all: restarts everywhere/);
    const all = meshctl(["lab", "restart", "agent", "--name", "nolab", "--all"]);
    assert.equal(all.status, 2);
    assert.match(oneLine(all), /no lab named "nolab"/);
  });

  it("lab up validates before it says it creates anything", () => {
    const config = join(dir, "c1.yaml");
    writeFileSync(config, "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: c1\n");
    const mesh = join(dir, "mesh.yaml");
    writeFileSync(mesh, "clusters:\n  c1: { id: 1 }\n  c9: { id: 9 }\n");
    const cases: [string[], RegExp][] = [
      [["--config", join(dir, "missing.yaml")], /missing.yaml: file does not exist/],
      [
        ["--config", config, "--mesh", mesh],
        /mesh.yaml: clusters.c9: no --config has a cluster named "c9" \(the configs name c1 \(.*c1.yaml\)\)/,
      ],
      [
        ["--config", config, "--ipsec-backend", "kernel-xfrm"],
        /--ipsec-backend: only with --encryption ipsec/,
      ],
      [
        ["--config", config, "--encryption", "ipsec", "--ipsec-backend", "xfrm"],
        /--ipsec-backend: "xfrm" is not one of/,
      ],
      [["--name", "Bad_Name", "--config", config], /--name: "Bad_Name" must be 1-8 lower-case/],
      [
        ["--clusters", "10", "--config", config],
        /--clusters: generates the kind configs; leave out --config/,
      ],
      [["--clusters", "ten"], /--clusters: "ten" is not a whole number/],
      [["--clusters", "100"], /--clusters: must be a whole number 1\.\.99 \(got 100\)/],
      [["--clusters", "3", "--no-install"], /--connect: needs the mesh installed/],
    ];
    for (const [args, error] of cases) {
      const run = meshctl(["lab", "up", ...args]);
      assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.doesNotMatch(run.stderr, /Creating lab/);
      // A non-root run stops at the preflight (must run as root), also before "Creating lab".
      if (process.getuid?.() === 0) assert.match(oneLine(run), error);
    }
  });

  it("names --kubeconfig and the path when the file is missing", () => {
    for (const args of [
      ["clustermesh", "status", "--context", "x"],
      ["clustermesh", "enable", "--context", "x"],
      ["clustermesh", "disable", "--context", "x"],
      ["clustermesh", "connect", "--context", "x", "--destination-context", "y"],
    ]) {
      const run = meshctl([...args, "--kubeconfig", "/nonexistent/kubeconfig"]);
      assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(
        oneLine(run),
        /^Error: --kubeconfig: no file at \/nonexistent\/kubeconfig \(give an existing kubeconfig, or leave the flag out/,
      );
    }
    const notYaml = join(dir, "not-a-kubeconfig");
    writeFileSync(notYaml, "{{{");
    const run = meshctl(["clustermesh", "status", "--context", "x", "--kubeconfig", notYaml]);
    assert.equal(run.status, 2);
    // the error, then the parser's reason on one "caused by" line
    const [first, cause, ...rest] = run.stderr.trim().split("\n");
    assert.match(first, /^Error: --kubeconfig: .*not-a-kubeconfig cannot be read as a kubeconfig/);
    assert.match(cause, /^Error: {3}caused by: \S/);
    assert.deepEqual(rest, [], run.stderr);
  });

  it("policy trace checks --from, --to and --dport before reaching the cluster", () => {
    const cases: [string[], RegExp][] = [
      [["--from", "a/b/c", "--to", "demo/web"], /--from: "a\/b\/c" is not ns\/pod, an IP address or labels/],
      [["--from", "demo/client", "--to", "app=web,=x"], /--to: "=x" is not key=value/],
      [
        ["--from", "demo/client", "--to", "demo/web", "--dport", "80/icmp"],
        /--dport: "80\/icmp" is not port\[\/protocol\]/,
      ],
      [["--from", "demo/client", "--to", "demo/web", "--dport", "70000"], /--dport: "70000"/],
    ];
    for (const [args, error] of cases) {
      const run = meshctl(["policy", "trace", "--context", "x", ...args]);
      assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(oneLine(run), error);
    }
  });

  it("clustermesh enable checks its flags before reaching the cluster", () => {
    const cases: [string[], RegExp][] = [
      [
        ["--cluster-id", "0"],
        /--cluster-id: 0 is not an integer 1..511 \(1..255 unless --max-connected-clusters 511\)/,
      ],
      [
        ["--cluster-id", "300", "--max-connected-clusters", "255"],
        /--cluster-id: 300 is not an integer 1..255/,
      ],
      [["--max-connected-clusters", "100"], /--max-connected-clusters: 100 is not 255 or 511/],
      [["--cluster-name", "Bad_Name", "--cluster-id", "1"], /--cluster-name: /],
      [["--cluster-id", "x"], /--cluster-id: "x" is not an integer/],
    ];
    for (const [args, error] of cases) {
      const started = Date.now();
      const run = meshctl(["clustermesh", "enable", "--context", "x", ...args]);
      assert.equal(run.status, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(oneLine(run), error);
      assert.doesNotMatch(run.stderr, /cannot reach|ECONNREFUSED/);
      assert.ok(Date.now() - started < 30_000);
    }
  });
});
