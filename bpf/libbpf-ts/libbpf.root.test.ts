// libbpf-ts against the real kernel: objects, maps (CRUD, batch, per-CPU, pins), test-run, the
// verifier log in errors, and every attach kind (tcx, tc clsact, XDP, cgroup) on a throwaway netns.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runSync } from "../../lib/exec.js";
import { DEFAULT_OBJECT_DIR } from "../datapath/loader.js";
import {
  createTestCgroup,
  inCgroupArgv,
  mountPrivateBpffs,
  type PrivateBpffs,
  uniqueSuffix,
} from "../testing.js";
import {
  AttachType,
  attachCgroup,
  attachTcClassic,
  attachTcx,
  attachXdp,
  BpfError,
  BpfLink,
  BpfMap,
  BpfObject,
  type Codec,
  detachTcClassic,
  inNetworkNamespace,
  interfaceIndex,
  MapType,
  UpdateFlags,
  u32Codec,
  u64Codec,
} from "./index.js";

const FIXTURE = join(DEFAULT_OBJECT_DIR, "testdata", "fixture.bpf.o");
const REJECTED = join(DEFAULT_OBJECT_DIR, "testdata", "rejected.bpf.o");
const BPF_LINK_TYPE_TCX = 11;
const BPF_LINK_TYPE_XDP = 6;
const BPF_LINK_TYPE_CGROUP = 3;

interface Pair {
  a: number;
  b: number;
}
const pairCodec: Codec<Pair> = {
  size: 8,
  encode(value, target, offset) {
    target.writeUInt32LE(value.a, offset);
    target.writeUInt32LE(value.b, offset + 4);
  },
  decode: (source, offset) => ({ a: source.readUInt32LE(offset), b: source.readUInt32LE(offset + 4) }),
};
const lpmKeyCodec: Codec<{ prefixLength: number; address: number }> = {
  size: 8,
  encode(value, target, offset) {
    target.writeUInt32LE(value.prefixLength, offset);
    target.writeUInt32BE(value.address, offset + 4);
  },
  decode: (source, offset) => ({
    prefixLength: source.readUInt32LE(offset),
    address: source.readUInt32BE(offset + 4),
  }),
};

describe("libbpf-ts", () => {
  let bpffs: PrivateBpffs;
  let object: BpfObject;
  let hash: BpfMap<number, Pair>;
  let counters: BpfMap<number, bigint>;

  const counter = (slot: number) => (counters.getPerCpu(slot) ?? []).reduce((sum, value) => sum + value, 0n);

  before(() => {
    bpffs = mountPrivateBpffs();
    object = BpfObject.open(FIXTURE).load();
    hash = object.map("fixture_hash", u32Codec, pairCodec);
    counters = object.map("fixture_percpu", u32Codec, u64Codec);
  });
  after(() => {
    object?.close();
    bpffs?.cleanup();
  });

  it("lists programs and maps of a loaded object", () => {
    assert.deepEqual(
      object.programs().map((program) => program.name),
      ["fixture_tc", "fixture_xdp", "fixture_connect4"],
    );
    assert.ok(object.mapNames().includes("fixture_lpm"));
    assert.equal(hash.info.type, MapType.Hash);
  });

  it("gets, sets, deletes and iterates", () => {
    hash.set(1, { a: 10, b: 11 });
    hash.set(2, { a: 20, b: 21 });
    assert.deepEqual(hash.get(1), { a: 10, b: 11 });
    assert.equal(hash.get(3), undefined);
    assert.deepEqual(
      new Map(hash.entries()),
      new Map([
        [1, { a: 10, b: 11 }],
        [2, { a: 20, b: 21 }],
      ]),
    );
    assert.equal(hash.delete(1), true);
    assert.equal(hash.delete(1), false);
    assert.throws(
      () => hash.set(2, { a: 0, b: 0 }, UpdateFlags.NoExist),
      (error: unknown) => {
        return error instanceof BpfError && error.code === "EEXIST" && /fixture_hash/.test(error.message);
      },
    );
    hash.delete(2);
  });

  it("updates and deletes in batches", () => {
    const entries = Array.from({ length: 5000 }, (_, i) => [i, { a: i, b: i * 2 }] as const);
    assert.equal(hash.updateBatch(entries), 5000);
    assert.deepEqual(hash.get(4999), { a: 4999, b: 9998 });
    assert.equal([...hash.keys()].length, 5000);
    // absent keys in the middle of a batch are skipped, not fatal
    assert.equal(hash.deleteBatch([0, 1, 999_999, 2, 3]), 4);
    assert.equal(hash.deleteBatch(entries.map(([key]) => key)), 4996);
    assert.equal([...hash.keys()].length, 0);
  });

  it("falls back to single updates for LPM tries", () => {
    const lpm = object.map("fixture_lpm", lpmKeyCodec, u32Codec);
    lpm.updateBatch([
      [{ prefixLength: 8, address: 0x0a000000 }, 8],
      [{ prefixLength: 24, address: 0x0a010200 }, 24],
    ]);
    assert.equal(lpm.get({ prefixLength: 32, address: 0x0a010203 }), 24, "longest prefix wins");
    assert.equal(lpm.get({ prefixLength: 32, address: 0x0a090909 }), 8);
    assert.equal(lpm.deleteBatch([{ prefixLength: 8, address: 0x0a000000 }]), 1);
  });

  it("refuses codecs whose sizes differ from the kernel's map", () => {
    assert.throws(() => object.map("fixture_hash", u32Codec, u32Codec), /codec sizes/);
  });

  it("pins a map and reopens it by path", () => {
    const path = join(bpffs.path, "fixture_hash");
    hash.pin(path);
    const reopened = BpfMap.openPinned(path, u32Codec, pairCodec);
    try {
      hash.set(7, { a: 70, b: 71 });
      assert.deepEqual(reopened.get(7), { a: 70, b: 71 });
      assert.equal(reopened.info.id, hash.info.id);
    } finally {
      reopened.close();
      hash.delete(7);
    }
  });

  it("test-runs a program with repeat, returning code, data out and duration", () => {
    const program = object.program("fixture_tc");
    const before = counter(0);
    const packet = Buffer.alloc(64, 0);
    packet[0] = 0xaa;
    const result = program.testRun({ data: packet, repeat: 10 });
    assert.equal(result.returnValue, 0);
    assert.equal(result.data[0], 0xbb, "the program's rewrite is visible in data out");
    assert.equal(packet[0], 0xaa, "the caller's buffer is untouched");
    assert.equal(counter(0) - before, 10n);
    assert.ok(result.durationNs >= 0);
  });

  it("puts the verifier log and errno name into load errors", () => {
    const rejected = BpfObject.open(REJECTED);
    try {
      assert.throws(
        () => rejected.load(),
        (error: unknown) =>
          error instanceof BpfError &&
          error.code === "EACCES" &&
          /invalid mem access 'map_value_or_null'/.test(error.log),
      );
    } finally {
      rejected.close();
    }
  });

  it("reports a missing object file with its errno", () => {
    assert.throws(
      () => BpfObject.open("/nonexistent.bpf.o"),
      (error: unknown) => error instanceof BpfError && error.code === "ENOENT",
    );
  });

  describe("attach", () => {
    const suffix = uniqueSuffix();
    // two namespaces joined by a veth pair: va (192.168.77.1) in A, vb (192.168.77.2) in B
    const netnsA = `lbta${suffix}`;
    const netnsB = `lbtb${suffix}`;
    const netnsPath = `/run/netns/${netnsA}`;
    const peerPath = `/run/netns/${netnsB}`;
    const sh = (path: string, command: string) => runSync(["nsenter", `--net=${path}`, "sh", "-c", command]);
    const ping = () => sh(netnsPath, "ping -c 2 -i 0.01 -W 1 -q 192.168.77.2 >/dev/null");
    let ifindexA = 0;

    before(() => {
      runSync(["ip", "netns", "add", netnsA]);
      runSync(["ip", "netns", "add", netnsB]);
      sh(
        netnsPath,
        `ip link add va type veth peer name vb netns ${netnsB} && ip addr add 192.168.77.1/24 dev va && ip link set va up`,
      );
      sh(peerPath, "ip addr add 192.168.77.2/24 dev vb && ip link set vb up");
      ifindexA = inNetworkNamespace(netnsPath, () => interfaceIndex("va"));
    });
    after(() => {
      for (const name of [netnsA, netnsB]) {
        if (existsSync(`/run/netns/${name}`)) runSync(["ip", "netns", "del", name]);
      }
    });

    it("tcx: attaches on ingress and egress as pinned links, sees traffic, detaches", () => {
      const program = object.program("fixture_tc");
      const egress = inNetworkNamespace(netnsPath, () => attachTcx(program, ifindexA, "egress"));
      const pinPath = join(bpffs.path, "tcx-egress");
      try {
        assert.equal(egress.info().type, BPF_LINK_TYPE_TCX);
        egress.pin(pinPath);
        egress.close(); // the pin keeps it attached
        const before = counter(0);
        ping();
        assert.ok(counter(0) - before >= 2n, "egress program ran for the pings");
        const reopened = BpfLink.openPinned(pinPath);
        reopened.detach();
        BpfLink.unpin(pinPath);
        const afterDetach = counter(0);
        ping();
        assert.equal(counter(0), afterDetach, "detached: no more runs");
      } finally {
        egress.close();
      }
      const ingress = inNetworkNamespace(netnsPath, () => attachTcx(program, ifindexA, "ingress"));
      try {
        const before = counter(0);
        ping();
        assert.ok(counter(0) - before >= 2n, "ingress program saw the replies");
      } finally {
        ingress.detach();
      }
    });

    it("tc clsact fallback: attaches and detaches a direct-action filter", () => {
      const program = object.program("fixture_tc");
      const attachment = inNetworkNamespace(netnsPath, () => attachTcClassic(program, ifindexA, "egress"));
      try {
        assert.ok(attachment.programId > 0);
        const before = counter(0);
        ping();
        assert.ok(counter(0) - before >= 2n);
      } finally {
        inNetworkNamespace(netnsPath, () => detachTcClassic(attachment));
      }
      const afterDetach = counter(0);
      ping();
      assert.equal(counter(0), afterDetach);
    });

    it("XDP: attaches as a link on a veth and sees received packets", () => {
      const ifindexB = inNetworkNamespace(peerPath, () => interfaceIndex("vb"));
      const link = inNetworkNamespace(peerPath, () => attachXdp(object.program("fixture_xdp"), ifindexB));
      try {
        assert.equal(link.info().type, BPF_LINK_TYPE_XDP);
        const before = counter(1);
        ping();
        assert.ok(counter(1) - before >= 2n);
      } finally {
        link.detach();
      }
    });

    it("cgroup: attaches connect4 to a child cgroup only, never a root", () => {
      const program = object.program("fixture_connect4");
      assert.throws(
        () => attachCgroup(program, "/sys/fs/cgroup/unified", AttachType.CgroupInet4Connect),
        /cgroup root/,
      );
      assert.throws(
        () => attachCgroup(program, "/sys/fs/cgroup/", AttachType.CgroupInet4Connect),
        /cgroup root/,
      );
      const cgroup = createTestCgroup(`libbpfts-${suffix}`);
      try {
        const link = attachCgroup(program, cgroup.path, AttachType.CgroupInet4Connect);
        try {
          assert.equal(link.info().type, BPF_LINK_TYPE_CGROUP);
          const before = counter(2);
          // a process inside the cgroup connects (the port is closed: the hook runs anyway)
          runSync(inCgroupArgv(cgroup.path, ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9 || true"]));
          assert.equal(counter(2) - before, 1n);
          // a process outside it is not affected
          runSync(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9 || true"]);
          assert.equal(counter(2) - before, 1n);
        } finally {
          link.detach();
        }
      } finally {
        cgroup.cleanup();
      }
    });
  });
});
