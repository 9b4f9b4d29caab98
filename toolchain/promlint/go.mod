// Wrapper module that builds cmd/promlint: Prometheus' text-format parser and metric linter over
// a /metrics exposition, for the tests. Build through scripts/go-build.sh promlint.
module clustermesh.local/toolchain/promlint

go 1.26.0

require (
	github.com/prometheus/client_golang v1.22.0
	github.com/prometheus/client_model v0.6.2
	github.com/prometheus/common v0.65.0
)

require (
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	google.golang.org/protobuf v1.36.6 // indirect
)
