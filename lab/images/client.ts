#!/usr/bin/env node
import { podIdentity } from "./identity.js";

/**
 * The lab image `clustermesh/client`: does nothing until stopped. Use it with
 * `kubectl exec <pod> -- curl -s http://<ip>:8080/` (host binaries such as curl, wget, socat and
 * ping run inside the pod's network namespace) or `-- node .../meshcurl.js <url>`.
 */
const identity = podIdentity();
console.log(`client: ${identity.namespace}/${identity.pod} on ${identity.node} (${identity.cluster}) ready`);
const timer = setInterval(() => undefined, 1 << 30);
const stop = () => {
  clearInterval(timer);
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
