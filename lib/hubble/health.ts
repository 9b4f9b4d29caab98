/**
 * grpc.health.v1.Health/Check, which `hubble status` asks first
 * (https://github.com/grpc/grpc/blob/master/doc/health-checking.md). Two fixed messages, so they
 * are encoded by hand rather than loading health.proto: the response is `status: SERVING` (field 1,
 * varint 1); the request's service name is not needed (one service per server).
 */
import type * as grpc from "@grpc/grpc-js";

const SERVING = Buffer.from([0x08, 0x01]);

export const healthService: grpc.ServiceDefinition = {
  Check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: () => Buffer.alloc(0),
    requestDeserialize: () => ({}),
    responseSerialize: () => SERVING,
    responseDeserialize: () => ({ status: "SERVING" }),
  },
};

export const healthImplementation = {
  Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, { status: "SERVING" }),
};
