"""One grpc.aio server per worker process, on the worker's event loop, started and stopped by the app's
lifespan (service.app). Several workers share SERVICE_GRPC_PORT with SO_REUSEPORT (the kernel spreads
connections over them), as granian's workers share the HTTP port. The message size limit is
SERVICE_MAX_BODY_BYTES: gRPC itself answers RESOURCE_EXHAUSTED above it, before the message is parsed.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2_grpc

from service.api.grpc import inference_pb2_grpc as pb_grpc
from service.api.grpc.service import HealthService, InferenceService
from service.dataplane import DataPlane


async def start(plane: DataPlane) -> grpc.aio.Server:
    """The gRPC server of this worker, listening on SERVICE_HOST:SERVICE_GRPC_PORT."""
    settings = plane.settings
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(plane), server)
    health_pb2_grpc.add_HealthServicer_to_server(HealthService(plane), server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    server.add_insecure_port(f"{host}:{settings.grpc_port}")
    await server.start()
    return server


async def stop(server: grpc.aio.Server, grace: float) -> None:
    """No new calls; those in flight finish within `grace` seconds (SERVICE_DRAIN_SECONDS)."""
    await server.stop(grace)
