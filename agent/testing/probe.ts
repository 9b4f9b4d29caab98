#!/usr/bin/env node
// Test client: `probe tcp|udp HOST PORT COUNT` makes COUNT requests, one connection (or datagram
// socket) each, and prints the answers as a JSON array ("" for a failed request, with the error).
import { createSocket } from "node:dgram";
import { connect } from "node:net";

const [protocol, host, portText, countText = "1"] = process.argv.slice(2);
const port = Number(portText);

function tcp(): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3000 });
    let data = "";
    socket.on("data", (chunk) => {
      data += chunk;
    });
    socket.on("end", () => resolve(data.trim()));
    socket.on("timeout", () => {
      socket.destroy();
      resolve("error: timeout");
    });
    socket.on("error", (error) => resolve(`error: ${error.message}`));
  });
}

function udp(): Promise<string> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      resolve("error: timeout");
    }, 2000);
    socket.on("message", (message) => {
      clearTimeout(timer);
      socket.close();
      resolve(message.toString().trim());
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      resolve(`error: ${error.message}`);
    });
    socket.connect(port, host, () => socket.send("hi\n"));
  });
}

const answers: string[] = [];
for (let i = 0; i < Number(countText); i++) answers.push(await (protocol === "udp" ? udp() : tcp()));
process.stdout.write(`${JSON.stringify(answers)}\n`);
