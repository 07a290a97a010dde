"""The Open Inference Protocol (KServe V2, REST): the same models, validation and metrics as /predict.

schemas (the protocol's JSON bodies), errors (its `{"error": "..."}` shape), tensors (a tensor's `data`
decoded and checked against its datatype and shape), infer (one inference request end to end: envelope →
the model's declared tensors → its matrix → the data plane), docs (OpenAPI examples) and routes (the
Litestar router under /v2). Nothing here names a model: each model declares its tensors (service.models).
"""
