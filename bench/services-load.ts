/**
 * The load generator of bench/services.ts, run inside a client pod's netns (and maybe its cgroup):
 *   node services-load.js conn|req <host> <port> <seconds> <concurrency> [warmupMs]
 * conn: each of <concurrency> loops opens a TCP connection, sends "ping\n", waits for the answer,
 *       closes (FIN), waits for the close; one completed cycle = one connection.
 * req:  <concurrency> keep-alive connections, each sending "ping\n" and waiting for the answer.
 * Counts only what completes in the window after the warm-up; prints JSON {count, errors, seconds,
 * rate}. Exits non-zero if nothing completed.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

const [mode, host, portText, secondsText, concurrencyText, warmupText = "300"] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const concurrency = Number(concurrencyText);
const warmupMs = Number(warmupText);
if ((mode !== "conn" && mode !== "req") || !host || !(port > 0) || !(seconds > 0) || !(concurrency > 0)) {
  console.error("usage: services-load.js conn|req <host> <port> <seconds> <concurrency> [warmupMs]");
  process.exit(64);
}

const OP_TIMEOUT_MS = 2_000;
const start = performance.now();
const windowStart = start + warmupMs;
const windowEnd = windowStart + seconds * 1000;
let count = 0;
let errors = 0;
let lastError = "";
const inWindow = (now: number) => now >= windowStart && now < windowEnd;

function fail(error: Error): void {
  errors++;
  lastError = error.message;
}

/** One connect + request + answer + close cycle. */
function oneConnection(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, noDelay: true });
    let answered = false;
    const timer = setTimeout(() => socket.destroy(new Error("timeout")), OP_TIMEOUT_MS);
    socket.on("connect", () => socket.write("ping\n"));
    socket.on("data", () => {
      answered = true;
      socket.end();
    });
    socket.on("error", fail);
    socket.on("close", () => {
      clearTimeout(timer);
      if (answered && inWindow(performance.now())) count++;
      resolve();
    });
  });
}

async function connectionLoop(): Promise<void> {
  while (performance.now() < windowEnd) await oneConnection();
}

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true, timeout: OP_TIMEOUT_MS }, () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once("timeout", () => socket.destroy(new Error("connect timeout")));
    socket.once("error", reject);
  });
}

async function requestLoop(): Promise<void> {
  const socket = await open();
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const send = () => {
      timer = setTimeout(() => socket.destroy(new Error("timeout")), OP_TIMEOUT_MS);
      socket.write("ping\n");
    };
    socket.on("data", () => {
      clearTimeout(timer);
      const now = performance.now();
      if (inWindow(now)) count++;
      if (now < windowEnd) send();
      else socket.end();
    });
    socket.on("error", fail);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve();
    });
    send();
  });
}

const loop = mode === "conn" ? connectionLoop : requestLoop;
await Promise.all(Array.from({ length: concurrency }, () => loop().catch((error: Error) => fail(error))));
console.log(JSON.stringify({ count, errors, lastError, seconds, rate: count / seconds }));
process.exitCode = count > 0 ? 0 : 1;
