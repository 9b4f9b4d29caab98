#!/usr/bin/env bash
# The Go-built programs the test suite runs, built once into the cache before any test starts
# (a cold build is tens of CPU-minutes; inside a test it would count against that test's timeout):
# Kubernetes v1.33 + etcd 3.5 + CoreDNS + the e2e test binary + promlint (scripts/go-build.sh) and Cilium's programs at each pinned
# release (test/interop/build.sh), and the mesh image's layers for the lab (image/lab-layers.sh). A no-op of a few seconds once built; progress goes to stderr.
# `npm run demo` needs only the first three and builds them itself on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/go-build.sh kubernetes etcd coredns >/dev/null
# Kubernetes' e2e test binary (network suites only) and agnhost: test/e2e/services-conformance.root.test.ts
bash scripts/go-build.sh kubernetes-e2e >/dev/null
# Prometheus' text parser + promlint over our /metrics (testing/promlint.ts)
bash scripts/go-build.sh promlint >/dev/null
bash test/interop/build.sh >/dev/null
# the mesh image's layers the lab's nodes run (Debian base by mmdebstrap, once; this build staged)
bash image/lab-layers.sh >/dev/null
