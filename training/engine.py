"""One generic training loop: mini-batches, AdamW, warmup + cosine schedule, early stopping.

Deterministic by construction: every random draw (shuffling, dropout, augmentation) comes from
generators seeded by `seed`, so the same seed and data give bit-identical weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from training.config import OptimConfig

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class History:
    """Per-epoch losses and accuracies; `best_epoch` is the one whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.train_loss),
            "seconds": round(self.seconds, 3),
        }


def loss_and_hits(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and the number of correct predictions: binary for 1-D logits, multiclass else."""
    if logits.dim() == 1:
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
        hits = ((logits > 0).long() == y).sum()
    else:
        loss = nn.functional.cross_entropy(logits, y)
        hits = (logits.argmax(dim=1) == y).sum()
    return loss, hits


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def _lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` in eval mode."""
    model.eval()
    total_loss, hits = 0.0, 0
    for start in range(0, len(x), batch_size):
        loss, batch_hits = loss_and_hits(model(x[start : start + batch_size]), y[start : start + batch_size])
        total_loss += float(loss) * len(x[start : start + batch_size])
        hits += int(batch_hits)
    return total_loss / len(x), hits / len(x)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[start : start + batch_size]) for start in range(0, len(x), batch_size)])


class EpochPrinter:
    """A live one-line display on a terminal; in a log, one line per fit when it ends."""

    def __init__(self, label: str, max_epochs: int) -> None:
        self.label = label
        self.max_epochs = max_epochs
        self.tty = sys.stderr.isatty()
        self.line = ""

    def __call__(self, epoch: int, history: History) -> None:
        self.line = (
            f"[{self.label}] epoch {epoch + 1:>3}/{self.max_epochs} "
            f"train loss {history.train_loss[-1]:.4f} acc {history.train_accuracy[-1]:.3f} | "
            f"val loss {history.val_loss[-1]:.4f} acc {history.val_accuracy[-1]:.3f}"
        )
        if self.tty:
            print(f"\r{self.line}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print("" if self.tty else self.line, file=sys.stderr, flush=True)


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: OptimConfig,
    *,
    seed: int,
    augment: Augment | None = None,
    label: str | None = None,
) -> History:
    """Train `model` in place; stop when validation loss has not improved for `patience` epochs
    and restore the weights of the best epoch. A `label` shows progress on stderr."""
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = train
    x_val, y_val = val
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    total_steps = steps_per_epoch * config.max_epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: _lr_factor(step, steps_per_epoch * config.warmup_epochs, total_steps, config.min_lr_ratio),
    )
    printer = EpochPrinter(label, config.max_epochs) if label else None
    history = History()
    best_loss, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    started = time.perf_counter()
    for epoch in range(config.max_epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss, hits = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            xb, yb = x_train[batch], y_train[batch]
            if augment is not None:
                xb = augment(xb, generator)
            loss, batch_hits = loss_and_hits(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
            hits += int(batch_hits)
        history.train_loss.append(total_loss / len(x_train))
        history.train_accuracy.append(hits / len(x_train))
        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        history.val_loss.append(val_loss)
        history.val_accuracy.append(val_accuracy)
        if printer is not None:
            printer(epoch, history)
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
            history.best_epoch = epoch
        else:
            stale += 1
            if stale >= config.patience:
                break
    if printer is not None:
        printer.close()
    model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - started
    return history
