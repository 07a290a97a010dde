"""The servicers: `inference.GRPCInferenceService` and `grpc.health.v1.Health`, over one data plane.

Every call goes through what REST uses (service.api.v2: the model lookup, the tensors' checks and the
one `predict`), so the messages are the REST ones and a ServiceError's HTTP status becomes the gRPC code
below. Inference while the service is not ready (loading, or draining after SIGTERM) is UNAVAILABLE,
the code clients retry elsewhere. Calls are counted by method and code (`modelserve_grpc_requests_total`),
refusals per model and reason class as on REST (`count_refusal`).
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Counter

from service.api.grpc import inference_pb2 as pb
from service.api.grpc import inference_pb2_grpc as pb_grpc
from service.api.grpc.tensors import inputs, is_plain_header, parameters, raw_parts, requested_outputs, response
from service.api.v2 import skeleton
from service.api.v2.infer import CONTRIBUTIONS, Outputs, explain_of, predict, predict_row, requested, threshold_of
from service.api.v2.routes import EXTENSIONS, PLATFORM, SERVER_VERSION, model_properties, served_model
from service.api.v2.single import MAX_BYTES, plain_row
from service.dataplane import DataPlane, Served
from service.errors import NOT_COUNTED, ServiceError
from service.metrics import count_refusal

SERVICE_NAME = "inference.GRPCInferenceService"
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}
REQUESTS = Counter("modelserve_grpc_requests", "gRPC calls answered, by method and status code", ["method", "code"])


def code_of(status: int) -> grpc.StatusCode:
    return CODES.get(status, grpc.StatusCode.INVALID_ARGUMENT if 400 <= status < 500 else grpc.StatusCode.INTERNAL)


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.max_batch = plane.settings.max_batch

    async def _fail(self, context: grpc.aio.ServicerContext, method: str, error: ServiceError) -> Any:
        code = code_of(error.status)
        REQUESTS.labels(method, code.name).inc()
        await context.abort(code, error.one_line())

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:  # noqa: N802
        REQUESTS.labels("ServerLive", "OK").inc()
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:  # noqa: N802
        REQUESTS.labels("ServerReady", "OK").inc()
        return pb.ServerReadyResponse(ready=self.plane.ready)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:  # noqa: N802
        REQUESTS.labels("ServerMetadata", "OK").inc()
        return pb.ServerMetadataResponse(name="modelserve", version=SERVER_VERSION, extensions=EXTENSIONS)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:  # noqa: N802
        plane = self.plane
        try:
            if request.name not in plane.names or not (plane.ready and plane.served):
                if request.name not in plane.names:
                    served_model(plane, request.name, None)  # raises the 404
                REQUESTS.labels("ModelReady", "OK").inc()
                return pb.ModelReadyResponse(ready=False)
            served_model(plane, request.name, request.version or None)
        except ServiceError as error:
            return await self._fail(context, "ModelReady", error)
        REQUESTS.labels("ModelReady", "OK").inc()
        return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:  # noqa: N802
        try:
            served = served_model(self.plane, request.name, request.version or None)
        except ServiceError as error:
            return await self._fail(context, "ModelMetadata", error)
        model = served.model
        answer = pb.ModelMetadataResponse(name=request.name, versions=[served.version], platform=PLATFORM)
        for spec in model.tensor_inputs:
            answer.inputs.add(name=spec.name, datatype=spec.datatypes[0], shape=[-1, *spec.tails[0]])
        for out in model.tensor_outputs:
            answer.outputs.add(name=out.name, datatype=out.datatype, shape=[-1, *out.tail])
        answer.properties.update(model_properties(model) or {})
        REQUESTS.labels("ModelMetadata", "OK").inc()
        return answer

    async def ModelInfer(  # noqa: N802
        self, request: pb.ModelInferRequest, context: Any, message: bytes | None = None
    ) -> pb.ModelInferResponse:
        """`message`: the request's bytes as they came, for single rows of a learned form."""
        plane, name = self.plane, request.model_name
        try:
            served = served_model(plane, name, request.model_version or None)
            if not plane.ready:
                raise ServiceError(503, "not_ready", "the service is not ready (starting or draining)")
            values = await self._infer(served, request, message)
        except ServiceError as error:
            if error.reason != NOT_COUNTED and name in plane.names:
                count_refusal(name, error.reason)
            return await self._fail(context, "ModelInfer", error)
        REQUESTS.labels("ModelInfer", "OK").inc()
        return response(request, name, served.version, values)

    async def _infer(self, served: Served, request: pb.ModelInferRequest, message: bytes | None) -> Outputs:
        """The outputs asked for, as REST's infer gives them (service.api.v2.infer), single rows of raw
        contents in a form seen before read by their learned skeleton (service.api.v2.skeleton). Measured on a
        tritonclient.grpc single heart row: 244–336 → 197–217 µs of CPU in-process (the least of 8
        interleaved rounds, two runs), 1,206 → 1,329 calls/s at 32 in flight (h2load, median of 6 interleaved
        rounds): grpc.aio's own per-call cost (~280 µs of CPU for an empty answer here) is most of what remains."""
        model = served.model
        # (not a batch's message: framing its contents again to compare would cost it ~20 µs for nothing)
        learnable = message is not None and len(message) <= MAX_BYTES and not request.id
        parts = raw_parts(message, request) if learnable else None
        if parts is not None:
            header, data, sizes = parts
            if (known := skeleton.read_raw(model, header, memoryview(data), "grpc", sizes)) is not None:
                (threshold, names), row = known
                return await predict_row(served, row, threshold, list(names))
        # `explain` (bool_param) adds the output `contributions`, as on REST (service.api.v2.infer)
        rest, explain = explain_of(parameters(request.parameters))
        threshold, _ = threshold_of(rest, model.overridable_threshold, request.model_name)
        tensors = inputs(request)
        known_outputs = [out.name for out in model.tensor_outputs] + ([CONTRIBUTIONS] if explain else [])
        names = requested(requested_outputs(request), known_outputs, False)
        if parts is not None and not explain and (row := plain_row(model, tensors)) is not None:
            if is_plain_header(parts[0]):
                skeleton.learn_raw(model, parts[0], tensors, (threshold, names), "grpc")
            return await predict_row(served, row, threshold, list(names))
        return await predict(served, tensors, threshold, list(names), self.max_batch, explain=explain)


class HealthService(health_pb2_grpc.HealthServicer):
    """`Check` for Kubernetes' gRPC probes: SERVING while ready, for the whole server (""), the
    inference service or a served model's name; NOT_FOUND for anything else."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:  # noqa: N802
        if request.service not in ("", SERVICE_NAME, *self.plane.names):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service[:64]!r}")
        status = (
            health_pb2.HealthCheckResponse.SERVING if self.plane.ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        return health_pb2.HealthCheckResponse(status=status)
