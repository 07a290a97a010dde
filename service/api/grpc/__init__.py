"""The Open Inference Protocol over gRPC: `inference.GRPCInferenceService` and `grpc.health.v1.Health`.

inference.proto is this server's own statement of the protocol's messages (field numbers are the
protocol's); inference_pb2*.py are generated from it by `make grpc-code`. tensors (request tensors ↔
the REST adapter's tensors, outputs → messages), service (the servicers: the same validation, data-plane
calls and messages as REST, ServiceError statuses as gRPC codes) and server (one grpc.aio server per
worker process on SERVICE_GRPC_PORT, sharing the port with SO_REUSEPORT, drained with the app).
"""
