#!/usr/bin/env node
// A steady request loop for restart tests: connects to host:port over TCP (one short request per
// connection, plus one long-lived connection pinged throughout) until SIGTERM, then prints
// {"ok":n,"failed":n,"errors":[…],"slow":[…],"longLived":"ok"|error} on stdout (slow: requests
// that took over a second, with their start time, to line up with the agents' logs).
import { connect, type Socket } from "node:net";

const [host, portText, intervalText = "20"] = process.argv.slice(2);
const port = Number(portText);
const intervalMs = Number(intervalText);
let ok = 0;
let failed = 0;
const errors: string[] = [];
const slow: string[] = [];
let stopping = false;
let longLived: string = "ok";

function request(): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    // 15 s: a SYN lost while the agent restarts is retransmitted after 1, 3 and 7 s (see the issue note).
    const socket = connect({ host, port, timeout: 15_000 });
    let data = "";
    const done = (error?: string) => {
      socket.destroy();
      const took = Date.now() - started;
      if (took > 1_000 && slow.length < 20) slow.push(`${new Date(started).toISOString()} ${took} ms`);
      if (error || !data) {
        failed++;
        if (errors.length < 20) errors.push(`${new Date(started).toISOString()} ${error ?? "empty reply"}`);
      } else ok++;
      resolve();
    };
    socket.on("data", (chunk) => {
      data += chunk;
    });
    socket.on("end", () => done());
    socket.on("timeout", () => done("timeout"));
    socket.on("error", (error) => done(error.message));
  });
}

// A connection kept open for the whole run: the backend must echo every ping.
function openLongLived(): Socket {
  const socket = connect({ host, port: port + 1 });
  socket.setEncoding("utf8");
  let expected = 0;
  let received = "";
  socket.on("data", (chunk: string) => {
    received += chunk;
    const lines = received.split("\n");
    received = lines.pop() ?? "";
    for (const line of lines) {
      if (line !== `ping ${expected}`) longLived = `unexpected echo "${line}" (wanted ping ${expected})`;
      expected++;
    }
  });
  socket.on("error", (error) => {
    if (!stopping) longLived = `long-lived connection failed: ${error.message}`;
  });
  socket.on("close", () => {
    if (!stopping && longLived === "ok") longLived = "long-lived connection closed";
  });
  let sent = 0;
  const timer = setInterval(() => socket.write(`ping ${sent++}\n`), 100);
  socket.on("close", () => clearInterval(timer));
  return socket;
}

const longSocket = openLongLived();
process.on("SIGTERM", () => {
  stopping = true;
});
while (!stopping) {
  await request();
  await new Promise((resolve) => setTimeout(resolve, intervalMs));
}
longSocket.destroy();
process.stdout.write(`${JSON.stringify({ ok, failed, errors, slow, longLived })}\n`);
