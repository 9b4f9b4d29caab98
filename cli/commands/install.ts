/**
 * `meshctl install`, `meshctl uninstall` and `meshctl status`: the command definitions only. Each
 * action loads ./install-actions.js when it runs (client-node, node-forge, the renderers), so help
 * and bad flags cost no more than they do for the other commands (bench/cli.ts).
 */
import { Command, Option } from "commander";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat } from "../output.js";
import { kubeconfigFile, parseDuration } from "./clustermesh.js";

const actions = () => import("./install-actions.js");

function integer(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n))
      throw new UsageError(`${flag}: "${value}" is not an integer`);
    return n;
  };
}

const contextOption = () =>
  new Option("--context <name>", "kubeconfig context of the cluster").makeOptionMandatory();
const kubeconfigOption = () =>
  new Option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)").argParser(
    kubeconfigFile,
  );
const waitDuration = (flag: string, fallback: string) =>
  new Option(`${flag} <duration>`, "how long --wait waits, e.g. 90s or 10m")
    .default(parseDuration(fallback), fallback)
    .argParser(parseDuration);

function installCommand(): Command {
  return new Command("install")
    .description(
      "install the mesh into a cluster: CRDs, RBAC, certificates, the agent DaemonSet, the clustermesh-apiserver Deployment and its Service",
    )
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .option("--cluster-name <name>", "the cluster's mesh name")
    .option("--cluster-id <id>", "the cluster's mesh id, 1..255", integer("--cluster-id"))
    .addOption(
      new Option("--encryption <mode>", "node-to-node encryption")
        .choices(["none", "wireguard", "ipsec"])
        .default("none"),
    )
    .addOption(
      new Option(
        "--ipsec-backend <backend>",
        "with IPsec: the agents' backend (auto picks kernel XFRM where the kernel has ESP)",
      )
        .choices(["auto", "kernel-xfrm", "libipsec"])
        .default("auto"),
    )
    .option(
      "--clustermesh-backend-ttl <duration>",
      "how long agents keep serving an unreachable remote cluster's backends (0s: forever)",
      "30s",
    )
    .option(
      "--k8s-service-host <host>",
      "the Kubernetes API server's address reachable from the nodes without kube-proxy (kind: <cluster>-control-plane)",
    )
    .option(
      "--k8s-service-port <port>",
      "the Kubernetes API server's port",
      integer("--k8s-service-port"),
      6443,
    )
    .option("--image <ref>", "the clustermesh image (default: this version's, as npm run image builds it)")
    .addOption(
      new Option("--apiserver-service-type <type>", "how other clusters reach the clustermesh-apiserver")
        .choices(["NodePort", "LoadBalancer", "ClusterIP"])
        .default("NodePort"),
    )
    .option(
      "--node-port <port>",
      "NodePort of the clustermesh-apiserver Service",
      integer("--node-port"),
      32379,
    )
    .option(
      "--no-hubble-relay",
      "no Hubble relay in the clustermesh-apiserver pod, agents serve Hubble on their node only",
    )
    .option(
      "--hubble-relay-node-port <port>",
      "NodePort of the hubble-relay-mesh Service (other clusters' relays)",
      integer("--hubble-relay-node-port"),
      32446,
    )
    .addOption(
      new Option(
        "--kvstoremesh-enabled <bool>",
        "KVStoreMesh: the clustermesh-apiserver caches the connected clusters and the agents read them from it (Cilium's clustermesh.apiserver.kvstoremesh.enabled)",
      )
        .choices(["true", "false"])
        .default("true"),
    )
    .option("--ca-cert <file>", "PEM CA certificate to issue from (share one CA across the mesh)")
    .option("--ca-key <file>", "PEM key of --ca-cert")
    .option("--dry-run", "print the manifests as YAML and change nothing")
    .option("--wait", "wait until every agent and the clustermesh-apiserver are ready")
    .addOption(waitDuration("--wait-duration", "5m"))
    .option("--force", "install although another CNI or kube-proxy is present")
    .action(async (options) => (await actions()).installAction(options));
}

function uninstallCommand(): Command {
  return new Command("uninstall")
    .description("remove what install made, in the cluster and on its nodes (CRDs only with --delete-crds)")
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .option("--delete-crds", "also delete the mesh's CRDs and every object of them")
    .addOption(waitDuration("--wait-duration", "3m").hideHelp())
    .action(async (options) => (await actions()).uninstallAction(options));
}

function statusCommand(): Command {
  return new Command("status")
    .description("the mesh's workloads in a cluster: DaemonSet and Deployment counts, each agent's readiness")
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .action(async (options) => (await actions()).statusAction(options));
}

export function installCommands(): Command[] {
  return [installCommand(), uninstallCommand(), statusCommand()];
}
