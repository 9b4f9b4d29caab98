/**
 * `meshctl policy trace`: would a connection be allowed, and by which rule (like `cilium policy
 * trace`). The definition only; ./policy-actions.ts (client-node, the resolver) loads when it runs.
 */
import { Command, Option } from "commander";
import { parseOutputFormat } from "../output.js";
import { kubeconfigFile } from "./clustermesh.js";
import { parseDport, parseEndpointArg } from "./policy-args.js";

export function policyCommand(): Command {
  const policy = new Command("policy").description(
    "network policies (NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy)",
  );
  policy
    .command("trace")
    .description(
      "whether a connection would pass the source's egress and the destination's ingress policy, and which rule decides, computed from the cluster's policies, pods and namespaces",
    )
    .requiredOption(
      "--from <source>",
      "ns/pod, an IP address, or labels app=x,io.kubernetes.pod.namespace=ns",
      (v) => parseEndpointArg("--from", v),
    )
    .requiredOption(
      "--to <destination>",
      "ns/pod, an IP address, or labels app=x,io.kubernetes.pod.namespace=ns",
      (v) => parseEndpointArg("--to", v),
    )
    .option(
      "--dport <port[/proto]>",
      "destination port and protocol, e.g. 80/tcp (default: any port)",
      parseDport,
    )
    .option("--from-cluster <name>", "the source is a pod of this cluster of the mesh (give it as labels)")
    .option("--to-cluster <name>", "the destination is a pod of this cluster of the mesh (give it as labels)")
    .addOption(
      new Option(
        "--context <name>",
        "kubeconfig context of the cluster whose policies apply",
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)").argParser(
        kubeconfigFile,
      ),
    )
    .addOption(new Option("-o, --output <format>", "text or json").default("text"))
    .action(async (options) => {
      const format = parseOutputFormat(options.output);
      const { policyTrace } = await import("./policy-actions.js");
      await policyTrace({ ...options, format });
    });
  return policy;
}
