"""The Open Inference Protocol (KServe V2, REST): the same models, validation and metrics as /predict.

schemas (the protocol's JSON bodies), errors (its `{"error": "..."}` shape, mapped to HTTP in one
place), tensors (a tensor's `data` decoded and checked against its datatype and shape), heart and
digits (input tensors → the model's float32 matrix, and the output tensors), infer (one inference
request end to end), docs (OpenAPI examples) and routes (the Litestar router under /v2).
"""
