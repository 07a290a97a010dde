"""One Task per model, by name: what the generic build (training/build.py) runs over.

Adding a model means one new module here, `training/tasks/<name>.py`, holding a `Task` subclass (its
data, networks, metrics, threshold rule, reference rows, manifest inputs/outputs and model card; see
base.py and heart.py), its entry in TASKS below, and its feature specs in `service/contract.py`. The
build, the pipeline and its summary, the CLI's --models and training/reload.py need no change. The
task's `config(run)` returns its config dataclass: heart's and digits' live in training/config.py,
where --small and --seed know them; a new one may keep its own beside its Task.
"""

from __future__ import annotations

from training.tasks.base import Task
from training.tasks.digits import DigitsTask
from training.tasks.heart import HeartTask

TASKS: dict[str, Task] = {task.name: task for task in (HeartTask(), DigitsTask())}

__all__ = ["TASKS", "Task"]
