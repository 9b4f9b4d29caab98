#!/usr/bin/env bash
# The demo: brings up the two-cluster lab from kind-configs/, shows it, and removes it again.
# Set KEEP=1 to leave the lab running (remove it later with: node dist/cli/main.js lab down).
set -euo pipefail
cd "$(dirname "$0")/.."
meshctl() { node dist/cli/main.js "$@"; }

LAB=${LAB:-demo}
cleanup() { [[ ${KEEP:-0} == 1 ]] || meshctl lab down --name "$LAB"; }
trap cleanup EXIT

meshctl lab up --name "$LAB" --config kind-configs/cluster1.yaml --config kind-configs/cluster2.yaml
echo
meshctl lab status --name "$LAB"
echo
worker1=$(meshctl lab status --name "$LAB" -o json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8")); process.stdout.write(s.clusters[0].nodes[1].netns)')
worker2_ip=$(meshctl lab status --name "$LAB" -o json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8")); process.stdout.write(s.clusters[1].nodes[1].ip)')
echo "Node to node across clusters on the lab network: $worker1 -> $worker2_ip"
nsenter --net="/run/netns/$worker1" ping -c 2 -W 2 "$worker2_ip"
