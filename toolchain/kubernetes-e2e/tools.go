//go:build tools

// Package tools pins the commands this module builds so `go mod tidy` keeps their dependencies
// (the e2e test binary's imports are in e2e/e2e_test.go).
package tools

import (
	_ "k8s.io/kubernetes/test/images/agnhost"
)
