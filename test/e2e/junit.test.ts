import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countByGroup, parseJUnit, specGroup } from "./junit.js";

// the shape of junit_01.xml as the v1.33 framework writes it (Ginkgo's reporter, failure message
// attribute omitted, every spec of the binary listed)
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="2" errors="0" failures="1" time="140.2">
  <testsuite name="Kubernetes e2e suite" package="/" tests="4" disabled="2" skipped="0" errors="0" failures="1" time="140.2">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="0.02"></testcase>
    <testcase name="[It] [sig-network] Services should serve multiport endpoints from pods [Conformance] [sig-network, Conformance]" classname="Kubernetes e2e suite" status="passed" time="6.775"></testcase>
    <testcase name="[It] [sig-network] Services should be able to switch session affinity for NodePort service [LinuxOnly] [Conformance] [sig-network, Conformance]" classname="Kubernetes e2e suite" status="failed" time="125.79">
      <failure type="failed">[FAILED] Affinity should hold but didn&#39;t.&#xA;In [It] at: service.go:262</failure>
      <system-err>…</system-err>
    </testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should support a &#39;default-deny-ingress&#39; policy [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" status="skipped" time="0.4">
      <skipped message="skipped - no policy support"></skipped>
    </testcase>
    <testcase name="[It] [sig-apps] Job should delete a job [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should support allow-all policy [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
  </testsuite>
</testsuites>`;

describe("the e2e JUnit report", () => {
  it("counts the specs the run selected, per group, with the first line of each message", () => {
    const specs = parseJUnit(REPORT, /\[sig-network\]/);
    assert.deepEqual(
      specs.map((s) => [s.group, s.state, s.message]),
      [
        ["[sig-network] Services", "passed", undefined],
        ["[sig-network] Services", "failed", "[FAILED] Affinity should hold but didn't."],
        ["[sig-network] Netpol", "skipped", "skipped - no policy support"],
        ["[sig-network] Netpol", "notRun", "skipped"],
      ],
    );
    assert.deepEqual(Object.fromEntries(countByGroup(specs)), {
      "[sig-network] Netpol": { passed: 0, failed: 0, skipped: 1, notRun: 1 },
      "[sig-network] Services": { passed: 1, failed: 1, skipped: 0, notRun: 0 },
    });
  });

  it("leaves out what the skip pattern names", () => {
    assert.equal(parseJUnit(REPORT, /\[sig-network\]/, /Netpol|affinity/).length, 1);
  });

  it("groups by the sig tag and the next word", () => {
    assert.equal(specGroup("[sig-network] Services should x"), "[sig-network] Services");
    assert.equal(specGroup("Something else"), "Something");
  });
});
