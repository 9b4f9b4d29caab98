/**
 * A TCP port nothing listens on, for tests and benchmarks that start servers on loopback. Ports
 * handed out once are never handed out again in this process: the kernel may offer a port it just
 * gave another caller as soon as that caller's probe socket closes, and two servers started side
 * by side (an etcd and an API server, say) would then race for it.
 */
import { createServer } from "node:net";

const handedOut = new Set<number>();

function probe(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probe(host);
    if (port && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} after 50 tries`);
}
