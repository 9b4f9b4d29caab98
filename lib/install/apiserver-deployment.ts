/**
 * The clustermesh-apiserver Deployment: etcd and the apiserver in one pod, as Cilium's
 * (https://github.com/cilium/cilium/blob/v1.18.4/install/kubernetes/cilium/templates/clustermesh-apiserver/deployment.yaml).
 * etcd serves TLS with client-certificate auth from the server certificate Secret that
 * `meshctl clustermesh enable` (and install, through it) issues; its data is an emptyDir, as
 * Cilium's: the apiserver republishes everything from Kubernetes at start. The apiserver talks to
 * etcd over the pod's loopback with the admin certificate and sets up etcd's users and roles at
 * every start (clustermesh-apiserver/etcd-init.ts: Cilium's etcd-init), so no separate init job.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import {
  HUBBLE_AGENT_PORT,
  HUBBLE_RELAY_MESH_PORT,
  HUBBLE_RELAY_PORT,
  HubbleObjects,
} from "../api/hubble.js";
import { MESH_ACCESS, MESH_NAMESPACE } from "../api/rbac.js";
import { MeshObjects } from "../clustermesh/resources.js";
import { KUBECONFIG_KEY, KUBECONFIG_MOUNT } from "./kubeconfig.js";
import {
  APISERVER_HEALTH_PORT,
  ETCD_PORT,
  InstallNames,
  PART_OF,
  scrapeAnnotations,
  selectorOf,
} from "./names.js";
import type { InstallSettings } from "./settings.js";

const SERVER_CERT_DIR = "/var/lib/etcd-secrets";
const ADMIN_CERT_DIR = "/var/lib/clustermesh-apiserver/admin";
const ETCD_DATA_DIR = "/var/run/etcd";
const RELAY_TLS_DIR = "/var/lib/clustermesh-apiserver/hubble-relay";
/**
 * The Hubble relay in the apiserver container (clustermesh-apiserver/hubble-relay.ts): plaintext on
 * 4245 for clients in the cluster (the hubble-relay Service, as Cilium's relay without
 * server TLS), mutual TLS on 4246 for other clusters' relays; peers are the Nodes' agents and the
 * relays `clustermesh connect` records.
 */
function relayArgs(): string[] {
  return [
    `--hubble-relay-address=:${HUBBLE_RELAY_PORT}`,
    "--hubble-relay-disable-server-tls",
    `--hubble-relay-mesh-address=:${HUBBLE_RELAY_MESH_PORT}`,
    "--hubble-relay-discover-nodes",
    `--hubble-relay-agent-port=${HUBBLE_AGENT_PORT}`,
    `--hubble-relay-peers-configmap=${HubbleObjects.relayPeers}`,
    `--hubble-relay-tls-ca=${RELAY_TLS_DIR}/ca.crt`,
    `--hubble-relay-tls-cert=${RELAY_TLS_DIR}/tls.crt`,
    `--hubble-relay-tls-key=${RELAY_TLS_DIR}/tls.key`,
  ];
}

export function apiserverDeployment(settings: InstallSettings): V1Deployment {
  const name = InstallNames.apiserverDeployment;
  const labels = { ...PART_OF, ...selectorOf(name) };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: MESH_NAMESPACE, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: selectorOf(name) },
      // one etcd with its data in the pod: never two at once
      strategy: { type: "Recreate" },
      template: {
        metadata: { labels, annotations: scrapeAnnotations(APISERVER_HEALTH_PORT) },
        spec: {
          serviceAccountName: MESH_ACCESS.clustermeshApiserver.name,
          priorityClassName: "system-cluster-critical",
          // a fresh cluster's only node may still carry the control-plane taint
          tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists" }],
          containers: [
            {
              name: "etcd",
              image: settings.image,
              command: ["etcd"],
              args: [
                "--name=clustermesh-apiserver",
                `--data-dir=${ETCD_DATA_DIR}`,
                `--listen-client-urls=https://0.0.0.0:${ETCD_PORT}`,
                `--advertise-client-urls=https://127.0.0.1:${ETCD_PORT}`,
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                "--initial-cluster=clustermesh-apiserver=http://127.0.0.1:2380",
                "--client-cert-auth",
                `--trusted-ca-file=${SERVER_CERT_DIR}/ca.crt`,
                `--cert-file=${SERVER_CERT_DIR}/tls.crt`,
                `--key-file=${SERVER_CERT_DIR}/tls.key`,
                "--auto-compaction-retention=1",
              ],
              ports: [{ name: "etcd", containerPort: ETCD_PORT, protocol: "TCP" }],
              volumeMounts: [
                { name: "etcd-data", mountPath: ETCD_DATA_DIR },
                { name: "server-cert", mountPath: SERVER_CERT_DIR, readOnly: true },
              ],
            },
            {
              name: "apiserver",
              image: settings.image,
              command: ["clustermesh-apiserver"],
              args: [
                `--cluster-name=${settings.clusterName}`,
                `--cluster-id=${settings.clusterId}`,
                `--kubeconfig=${KUBECONFIG_MOUNT}`,
                `--etcd-servers=https://127.0.0.1:${ETCD_PORT}`,
                `--etcd-cafile=${ADMIN_CERT_DIR}/ca.crt`,
                `--etcd-certfile=${ADMIN_CERT_DIR}/tls.crt`,
                `--etcd-keyfile=${ADMIN_CERT_DIR}/tls.key`,
                `--readyz-address=0.0.0.0:${APISERVER_HEALTH_PORT}`,
                ...(settings.hubbleRelay ? relayArgs() : []),
                ...(settings.kvstoremesh
                  ? // the remotes `clustermesh connect` records, read through the API: a mounted
                    // Secret reaches the pod only at the kubelet's next sync (a minute or more)
                    ["--kvstoremesh=true", `--clustermesh-config-secret=${MeshObjects.kvstoremesh}`]
                  : []),
              ],
              ports: [
                { name: "health", containerPort: APISERVER_HEALTH_PORT, protocol: "TCP" },
                ...(settings.hubbleRelay
                  ? [
                      { name: "hubble-relay", containerPort: HUBBLE_RELAY_PORT, protocol: "TCP" },
                      { name: "hubble-mesh", containerPort: HUBBLE_RELAY_MESH_PORT, protocol: "TCP" },
                    ]
                  : []),
              ],
              readinessProbe: {
                httpGet: { path: "/readyz", port: APISERVER_HEALTH_PORT as never },
                periodSeconds: 5,
              },
              livenessProbe: {
                httpGet: { path: "/healthz", port: APISERVER_HEALTH_PORT as never },
                periodSeconds: 10,
                failureThreshold: 6,
                initialDelaySeconds: 30,
              },
              volumeMounts: [
                { name: "admin-cert", mountPath: ADMIN_CERT_DIR, readOnly: true },
                { name: "kubeconfig", mountPath: KUBECONFIG_MOUNT, subPath: KUBECONFIG_KEY, readOnly: true },
                ...(settings.hubbleRelay
                  ? [{ name: "hubble-relay-tls", mountPath: RELAY_TLS_DIR, readOnly: true }]
                  : []),
              ],
            },
          ],
          volumes: [
            { name: "etcd-data", emptyDir: {} },
            { name: "server-cert", secret: { secretName: MeshObjects.serverCert, defaultMode: 0o400 } },
            { name: "admin-cert", secret: { secretName: MeshObjects.adminCert, defaultMode: 0o400 } },
            { name: "kubeconfig", configMap: { name: InstallNames.kubeconfigConfigMap } },
            ...(settings.hubbleRelay
              ? [
                  {
                    name: "hubble-relay-tls",
                    secret: { secretName: HubbleObjects.relayCert, defaultMode: 0o400 },
                  },
                ]
              : []),
          ],
        },
      },
    },
  };
}
