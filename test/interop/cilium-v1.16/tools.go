//go:build tools

// Keeps Cilium's clustermesh-apiserver main package in the module graph so that
// `go build github.com/cilium/cilium/clustermesh-apiserver` resolves with this go.sum.
package tools

import _ "github.com/cilium/cilium/clustermesh-apiserver"
