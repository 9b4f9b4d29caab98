/**
 * A one-shot client for the namespace tests, run inside a pod's netns (and maybe its cgroup):
 *   node probe.js tcp|udp-connect|udp-sendto <host> <port> <timeoutMs>
 * Sends "hi", prints JSON {reply, peer}: peer is the address the application sees for the other
 * side (getpeername for connected sockets, the recvmsg source for sendto), which socket LB must
 * keep equal to the VIP. Exits as soon as the reply arrives, non-zero on timeout.
 */
import { createSocket } from "node:dgram";
import { connect } from "node:net";

const [mode, host, portText, timeoutText] = process.argv.slice(2);
const port = Number(portText);
const timer = setTimeout(() => {
  console.error(`probe: no reply from ${host}:${port} within ${timeoutText} ms`);
  process.exit(2);
}, Number(timeoutText));

function done(reply: string, peer: string): void {
  clearTimeout(timer);
  console.log(JSON.stringify({ reply: reply.trim(), peer }));
  process.exit(0);
}

if (mode === "tcp") {
  const socket = connect({ host, port });
  let peer = "";
  let reply = "";
  socket.on("connect", () => {
    peer = `${socket.remoteAddress}:${socket.remotePort}`;
    // no half-close here: socat would give its command only -t (0.5 s) after our EOF to answer
    socket.write("hi\n");
  });
  socket.on("data", (chunk) => {
    reply += chunk.toString();
  });
  socket.on("end", () => {
    socket.end();
    done(reply, peer);
  });
  socket.on("error", (error) => {
    console.error(`probe: ${error.message}`);
    process.exit(1);
  });
} else {
  const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  socket.on("message", (message, remote) => {
    const peer =
      mode === "udp-connect"
        ? `${socket.remoteAddress().address}:${socket.remoteAddress().port}`
        : `${remote.address}:${remote.port}`;
    done(message.toString(), peer);
  });
  if (mode === "udp-connect") {
    socket.connect(port, host, () => socket.send("hi\n"));
  } else {
    socket.send("hi\n", port, host);
  }
}
