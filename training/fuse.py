"""The heart ensemble folded into one network for serving: the same function, a third of the graph.

Why: the trained model is a mean of k one-hidden-layer MLPs, each with its own encoder (median fill,
standardisation, missing indicators, one-hot). Exported as trained, the ONNX graph runs k encoders,
each a chain of column gathers, fills, subtractions, divisions and concatenations over every row,
and k small matrix products. The products are tiny (30 → 8 → 1): on 32,000 rows onnxruntime spent
4 ms in Gemm and 29 ms in the encoders' element-wise and copy operators (Gather 9.9, Concat 8.3,
Where 5.0, Sub 3.3, Div 3.3). Everything an encoder does before the first layer is affine in the raw
values once the missing cells are split off, so it folds into that layer's weights:

    member m's first layer on column j:  W[:, j] · (fill_m(x_j) - mean_mj) / scale_mj
    with fill_m(x_j) = x0_j + isnan(x_j) · median_mj   (x0 = x with NaN set to 0)
    =  (W[:, j] / scale_mj) · x0_j  +  (W[:, j] · (median_mj - mean_mj) / scale_mj) · isnan(x_j) ...

and the mean over members of their output layers is one output layer over the members' hidden units
side by side. So every member reads the same three blocks, built once per row: x0, isnan(x) and the
one-hot codes; one Linear of k·hidden units, ReLU, one Linear to the mean logit.

`FusedTabularEnsemble.from_ensemble` builds it from a trained `LogitEnsemble` of `HeartMLP`s; the export
checks the ONNX graph of the fused network against the trained ensemble itself (training.export's
parity, 1e-5 on probabilities), so the folding is proved on every build, not assumed.
"""

from __future__ import annotations

import torch
from torch import nn

from training.models import HeartMLP, LogitEnsemble, TabularEncoder


class UnfoldableModelError(TypeError):
    """The ensemble is not made of one-hidden-layer HeartMLPs over one shared column layout."""


def _first_and_last(member: HeartMLP) -> tuple[nn.Linear, nn.Linear]:
    linears = [layer for layer in member.net if isinstance(layer, nn.Linear)]
    if len(linears) != 2:
        raise UnfoldableModelError(f"a member has {len(linears)} linear layers; folding needs exactly 2")
    return linears[0], linears[1]


def _same_layout(encoders: list[TabularEncoder]) -> TabularEncoder:
    first = encoders[0]
    for name in ("numeric_columns", "indicator_columns", "onehot_columns", "onehot_codes"):
        if any(not torch.equal(getattr(e, name), getattr(first, name)) for e in encoders[1:]):
            raise UnfoldableModelError(f"the members' encoders differ in {name}")
    return first


class FusedTabularEnsemble(nn.Module):
    """Raw features [n, d] with NaN → the ensemble's mean logit [n], from one hidden layer of k·h units."""

    def __init__(self, n_inputs: int, onehot_columns: torch.Tensor, onehot_codes: torch.Tensor, hidden: int) -> None:
        super().__init__()
        self.register_buffer("onehot_columns", onehot_columns.clone())
        self.register_buffer("onehot_codes", onehot_codes.clone())
        self.hidden = nn.Linear(2 * n_inputs + len(onehot_codes), hidden)
        self.output = nn.Linear(hidden, 1)

    @classmethod
    @torch.no_grad()
    def from_ensemble(cls, ensemble: LogitEnsemble) -> FusedTabularEnsemble:
        members = list(ensemble.members)
        if not members or not all(isinstance(m, HeartMLP) for m in members):
            raise UnfoldableModelError(f"folding takes HeartMLP members, got {[type(m).__name__ for m in members]}")
        layout = _same_layout([m.encoder for m in members])
        d, numeric = layout.n_inputs, layout.numeric_columns
        n_numeric, n_indicators = len(numeric), len(layout.indicator_columns)
        firsts, lasts = zip(*(_first_and_last(m) for m in members), strict=True)
        width = sum(first.out_features for first in firsts)
        fused = cls(d, layout.onehot_columns, layout.onehot_codes, width)
        weight = torch.zeros(width, 2 * d + len(layout.onehot_codes), dtype=torch.float64)
        bias = torch.zeros(width, dtype=torch.float64)
        row = 0
        for member, first in zip(members, firsts, strict=True):
            encoder, w, b = member.encoder, first.weight.double(), first.bias.double()
            rows = slice(row, row + first.out_features)
            per_unit = w[:, :n_numeric] / encoder.scales.double()  # weight of a raw (filled) numeric value
            weight[rows, numeric] = per_unit
            weight[rows, d + numeric] = per_unit * encoder.medians.double()  # a missing value reads as its median
            weight[rows, d + layout.indicator_columns] += w[:, n_numeric : n_numeric + n_indicators]
            weight[rows, 2 * d :] = w[:, n_numeric + n_indicators :]
            bias[rows] = b - per_unit @ encoder.means.double()
            row += first.out_features
        fused.hidden.weight.copy_(weight.float())
        fused.hidden.bias.copy_(bias.float())
        fused.output.weight.copy_(torch.cat([last.weight for last in lasts], dim=1) / len(members))
        fused.output.bias.copy_(torch.stack([last.bias for last in lasts]).mean(dim=0))
        return fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Features as rows, patients as columns while encoding: onnxruntime gathers and concatenates whole
        # rows as single copies, where along the last axis it copies value by value (Gather 7.5 and Concat
        # 3.8 of 12.5 ms on 32,000 rows; so 0.5 and 1.5). Back to one patient per row for the layers: with
        # patients as columns, a row's answer changed in the last bit with the batch it came in (onnxruntime
        # takes another kernel for one column), and a patient's answer must not depend on the batch.
        columns = x.transpose(0, 1)
        missing = torch.isnan(columns)
        filled = torch.where(missing, 0.0, columns)
        # NaN equals no code, so a missing category is an all-zero one-hot block, as in TabularEncoder.
        onehot = (columns.index_select(0, self.onehot_columns) == self.onehot_codes[:, None]).to(x.dtype)
        features = torch.cat([filled, missing.to(x.dtype), onehot], dim=0).transpose(0, 1)
        return self.output(torch.relu(self.hidden(features))).squeeze(-1)
