#!/usr/bin/env bash
# The two-cluster demo: lab up, connect the clusters, a global echo service with backends in both,
# a client in cluster1 reaching both; then affinity=local keeps it local; then cluster1's backends
# scaled to zero and traffic fails over to cluster2. KEEP=1 leaves the lab running.
set -euo pipefail
cd "$(dirname "$0")/.."
meshctl() { node dist/cli/main.js "$@"; }

LAB=${LAB:-demo}
C1="$LAB-cluster1"
C2="$LAB-cluster2"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  local status=$?
  if [[ ${KEEP:-0} == 1 && $status == 0 ]]; then
    echo "Lab kept: kubectl --context $C1 get pods -A; remove it with: node dist/cli/main.js lab down --name $LAB"
  else
    meshctl lab down --name "$LAB" || true
  fi
  exit $status
}
trap cleanup EXIT

step "Two clusters from kind configs (one network namespace per node)"
meshctl lab up --name "$LAB" --config kind-configs/cluster1.yaml --config kind-configs/cluster2.yaml
meshctl lab status --name "$LAB"

step "Connect cluster1 <=> cluster2"
meshctl clustermesh connect --context "$C1" --destination-context "$C2"
meshctl clustermesh status --context "$C1" --wait --wait-duration 3m

step "A global echo service in both clusters, a client in cluster1"
for ctx in "$C1" "$C2"; do kubectl --context "$ctx" apply -f scripts/demo/global-echo.yaml; done
kubectl --context "$C1" apply -f scripts/demo/client.yaml
for ctx in "$C1" "$C2"; do
  kubectl --context "$ctx" -n demo wait --for=condition=Ready pod -l app=echo --timeout=120s
done
kubectl --context "$C1" -n demo wait --for=condition=Ready pod/client --timeout=120s

ECHO_IP=$(kubectl --context "$C1" -n demo get svc echo -o jsonpath='{.spec.clusterIP}')
# Counts which cluster answered each of 20 requests to the service's ClusterIP in cluster1.
tally() {
  kubectl --context "$C1" -n demo exec client -- sh -c \
    "for i in \$(seq 20); do node /opt/clustermesh/dist/lab/images/meshcurl.js http://$ECHO_IP/ --timeout-ms 3000 2>/dev/null; echo; done" | grep -o '"cluster":"[^"]*"' | sort | uniq -c
}
wait_for_backends() { # cluster1's agents have merged cluster2's backends into demo/echo
  for _ in $(seq 60); do
    if [[ $(tally | wc -l) -ge $1 ]]; then return 0; fi
    sleep 1
  done
  echo "backends of $1 clusters did not show up in time" >&2
  return 1
}

step "The client in cluster1 reaches backends in both clusters (service $ECHO_IP)"
wait_for_backends 2
tally

step "service.cilium.io/affinity=local: cluster1's own backends are preferred"
kubectl --context "$C1" -n demo annotate service echo service.cilium.io/affinity=local --overwrite
for _ in $(seq 30); do
  if ! tally | grep -q '"cluster":"cluster2"'; then break; fi
  sleep 1
done
tally

step "cluster1's backends scaled to zero: traffic fails over to cluster2"
kubectl --context "$C1" -n demo scale deployment echo --replicas=0
for _ in $(seq 30); do
  if ! tally | grep -q '"cluster":"cluster1"'; then break; fi
  sleep 1
done
tally

step "Mesh status"
meshctl clustermesh status --context "$C1"
