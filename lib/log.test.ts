import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLogger, REDACTED, scrubSecrets } from "./log.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger({ name: "test", pretty: false, destination }) };
}

const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PEM = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const PEM_BODY = PEM.split("\n")[1];

describe("logger", () => {
  it("never writes a private key, whatever field or shape carries it", () => {
    const { lines, log } = capture();
    log.info({ privateKey: PEM }, "a");
    log.info({ connection: { tls: { ca: "ca", cert: "cert", key: PEM } } }, "b");
    log.info({ key: PEM }, "c: a PEM in a field named key is still caught by its armour");
    log.info({ files: [{ name: "tls.key", content: PEM }] }, "d");
    log.info({ raw: Buffer.from(PEM) }, "e");
    log.warn({ err: new Error(`could not parse ${PEM}`) }, "f");
    log.info(`message quoting ${PEM}`);
    log.child({ secret: PEM }).info("g");
    log.info({ keyPem: "not even a PEM", token: "abc123", password: "hunter2" }, "h");
    const text = lines.join("\n");
    assert.equal(lines.length, 9);
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.ok(!text.includes(PEM_BODY), "no line of the key");
    assert.doesNotMatch(text, /abc123|hunter2|not even a PEM/);
    assert.equal(JSON.parse(lines[1]).connection.tls.cert, "cert", "only the secret is censored");
  });

  it("writes etcd keys and other fields named key as they are", () => {
    const { lines, log } = capture();
    const etcdKey = "cilium/state/services/v1/c2/demo/echo";
    log.warn({ key: etcdKey, reason: "cluster-mismatch" }, "rejected remote kvstore entry");
    log.info({ entry: { key: etcdKey } }, "nested");
    assert.equal(JSON.parse(lines[0]).key, etcdKey);
    assert.equal(JSON.parse(lines[1]).entry.key, etcdKey);
  });

  it("scrubSecrets copies only what changes", () => {
    const clean = { a: 1, b: { c: "x" }, d: ["y"] };
    assert.equal(scrubSecrets(clean), clean);
    const dirty = { a: 1, b: { c: PEM } };
    assert.deepEqual(scrubSecrets(dirty), { a: 1, b: { c: REDACTED } });
    assert.equal(dirty.b.c, PEM, "the logged object itself is not modified");
  });
});
