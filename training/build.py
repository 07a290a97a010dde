"""One model's artifact, end to end, for any Task: data → split → cross-validation with the final fit
alongside → threshold → test metrics → ONNX export → parity → files → manifest → report → publish.

Everything model-specific is the task's (training/tasks/); this module is only the order of the steps
and what every artifact holds the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import joblib
import torch

from service.contract import (
    BACKGROUND_FILE,
    ONNX_FILE,
    PREPROCESS_FILE,
    REFERENCE_FILE,
    SCHEMA_VERSION,
    WEIGHTS_FILE,
    Manifest,
)
from training import bundle
from training.config import RunConfig, to_dict
from training.evaluate import probability_histogram
from training.explain import background_payload
from training.export import PARITY_TOLERANCE, check_parity, export_onnx
from training.preprocess import stratified_split
from training.tasks.base import Task, Trained


def build(task: Task, run: RunConfig, log: Callable[[str], None] = print) -> Path:
    """Train, evaluate and publish one version of `task`'s model; returns the new version's directory."""
    config = task.config(run)
    data = task.load(run)
    X, y = data.X, data.y
    dev, test = stratified_split(y, config.test_size, config.seed)
    log(f"[{task.name}] {len(y)} {task.rows_are} from {data.source}: {len(dev)} for training, {len(test)} held out")

    # The final fit runs in the cross-validation's worker pool, so no core idles while the last folds
    # finish. The threshold is chosen on out-of-fold probabilities: never on rows a model trained on.
    final_fit = partial(task.fit, X[dev], y[dev], config, seed=config.seed, label=task.name)
    cv = task.cross_validate(X[dev], y[dev], config, log, alongside=final_fit)
    threshold = task.choose_threshold(y[dev], cv["oof_probabilities"], config)
    fitted = cv["alongside"]
    trained = Trained(data=data, config=config, dev=dev, test=test, fitted=fitted, cv=cv, threshold=threshold)
    evaluation = task.evaluate(trained)

    model_dir = run.artifacts_dir / task.name
    created_at = bundle.now_utc()
    with bundle.staging_directory(model_dir) as staging:
        onnx_path = staging / ONNX_FILE
        export_onnx(task.served_network(fitted.model), X[dev], onnx_path, task.inputs.onnx.name, task.outputs.onnx.name)
        inputs, reference_x = task.reference(trained)
        parity = {
            "reference": check_parity(fitted.model, onnx_path, reference_x, "reference"),
            "test_split": check_parity(fitted.model, onnx_path, X[test], "test split"),
        }
        reference_p = fitted.predict_proba(reference_x)
        bundle.write_json(staging / REFERENCE_FILE, {"inputs": inputs, "probabilities": reference_p.tolist()})
        background, explanation = task.background(trained)
        columns = explanation.pop("columns")
        bundle.write_json(staging / BACKGROUND_FILE, background_payload(explanation["rule"], columns, background))
        torch.save(fitted.model.state_dict(), staging / WEIGHTS_FILE)
        architecture = task.architecture(config)
        joblib.dump(
            {"model": task.name, "architecture": architecture, **task.preprocess(trained), "config": to_dict(config)},
            staging / PREPROCESS_FILE,
        )
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            name=task.name,
            version=bundle.version_name(created_at, staging),
            created_at=created_at.isoformat().replace("+00:00", "Z"),
            git_commit=bundle.git_commit(),
            seed=config.seed,
            data={
                "source": data.source,
                "sha256": data.sha256,
                "rows": len(y),
                **task.data_facts(trained),
                "split": {"train": len(dev), "test": len(test), "test_size": config.test_size, "seed": config.seed},
            },
            config=to_dict(config),
            libraries=bundle.library_versions(),
            task=task.kind,
            architecture=architecture,
            inputs=task.inputs,
            outputs=task.outputs,
            labels=list(task.labels),
            threshold=threshold,
            metrics={"cv": cv["cv"], "cv_folds": cv["folds"], **evaluation.metrics},
            drift=task.drift(trained),
            parity={"tolerance": PARITY_TOLERANCE, "max_abs_diff": parity},
            monitoring={"test_probability_histogram": probability_histogram(evaluation.monitored)},
            training={"histories": [h.as_dict() for h in fitted.histories]},
            explanation={"file": BACKGROUND_FILE, "rows": len(background), **explanation},
            files={},  # publish lists them once every file, the report included, is written
        )
        if run.report:
            task.write_report(staging, manifest, trained, evaluation)
        version_dir = bundle.publish(staging, model_dir, manifest)
    log(f"[{task.name}] published {version_dir}")
    return version_dir
