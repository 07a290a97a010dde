"""Data loading: the Cleveland mapping and the user-CSV checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.contract import HEART_FEATURE_NAMES
from training.data import (
    HUNGARIAN_ROW_ID,
    TARGET,
    DataError,
    cleveland_from_uci,
    heart_matrix,
    heart_records,
    load_cleveland,
    load_digits_data,
    load_heart_csv,
)


def uci_row(**overrides: object) -> dict[str, object]:
    row = {
        "id": 1,
        "age": 63,
        "sex": "Male",
        "dataset": "Cleveland",
        "cp": "typical angina",
        "trestbps": 145,
        "chol": 233,
        "fbs": True,
        "restecg": "lv hypertrophy",
        "thalch": 150,
        "exang": False,
        "oldpeak": 2.3,
        "slope": "downsloping",
        "ca": 0.0,
        "thal": "fixed defect",
        "num": 0,
    }
    return row | overrides


def test_cleveland_has_the_canonical_303_patients() -> None:
    data = load_cleveland()
    frame = data.frame
    assert len(frame) == 303
    assert list(frame.columns) == [*HEART_FEATURE_NAMES, TARGET]
    assert int(frame[TARGET].sum()) == 139  # num > 0 in 139 of the 303 canonical patients
    # The last canonical patient (id 303) is a 38-year-old man; the Hungarian id-304 row (age 28) is gone.
    assert frame.iloc[-1]["age"] == 38 and frame.iloc[-1]["sex"] == 1
    assert not ((frame["age"] == 28) & frame["slope"].isna() & frame["thal"].isna()).any()
    assert set(frame["thal"].dropna()) == {"normal", "fixed", "reversible"}
    assert frame["ca"].isna().sum() == 4 and frame["thal"].isna().sum() == 2
    assert len(data.sha256) == 64


def test_uci_mapping_drops_the_hungarian_row_and_reads_zero_as_missing() -> None:
    raw = pd.DataFrame(
        [
            uci_row(id=1),
            uci_row(id=2, chol=0, trestbps=0, sex="Female", cp="asymptomatic", thal="reversable defect", num=3),
            uci_row(id=HUNGARIAN_ROW_ID, age=28),
            uci_row(id=305, dataset="Hungary"),
        ]
    )
    frame = cleveland_from_uci(raw)
    assert len(frame) == 2
    assert np.isnan(frame.loc[1, "chol"]) and np.isnan(frame.loc[1, "trestbps"])
    assert frame.loc[0, "chol"] == 233 and frame.loc[0, "trestbps"] == 145
    assert frame.loc[1, "sex"] == 0 and frame.loc[1, "cp"] == 4 and frame.loc[1, "thal"] == "reversible"
    assert frame[TARGET].tolist() == [0, 1]


def test_matrix_uses_contract_codes_and_nan_for_missing() -> None:
    frame = pd.DataFrame(
        [
            {
                "age": 50,
                "sex": 1,
                "cp": 4,
                "trestbps": None,
                "chol": 200,
                "fbs": 0,
                "restecg": 2,
                "thalach": 150,
                "exang": 1,
                "oldpeak": -1.5,
                "slope": None,
                "ca": 2,
                "thal": "reversible",
            }
        ]
    )
    x = heart_matrix(frame)
    assert x.dtype == np.float32 and x.shape == (1, 13)
    by_name = dict(zip(HEART_FEATURE_NAMES, x[0], strict=True))
    assert by_name["thal"] == 7.0 and by_name["cp"] == 4.0 and by_name["oldpeak"] == -1.5
    assert np.isnan(by_name["trestbps"]) and np.isnan(by_name["slope"])


def test_records_are_api_bodies_with_none_for_missing() -> None:
    records = heart_records(load_cleveland().frame)
    missing_ca = [r for r in records if r["ca"] is None]
    assert len(missing_ca) == 4
    assert all(isinstance(r["sex"], int) and isinstance(r["age"], float) for r in records)
    assert {r["thal"] for r in records} == {"normal", "fixed", "reversible", None}


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def canonical_frame() -> pd.DataFrame:
    return load_cleveland().frame.head(40).copy()


def test_user_csv_round_trips(tmp_path: Path, canonical_frame: pd.DataFrame) -> None:
    loaded = load_heart_csv(write_csv(tmp_path / "heart.csv", canonical_frame))
    pd.testing.assert_frame_equal(loaded.frame, canonical_frame, check_dtype=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["thal"]), "missing column(s) ['thal']"),
        (lambda f: f.assign(smoker=1), "unknown column(s) ['smoker']"),
        (lambda f: f.assign(chol=["high"] * len(f)), "column 'chol' has non-numeric value 'high'"),
        (lambda f: f.assign(cp=[7] * len(f)), "column 'cp' has 7"),
        (lambda f: f.assign(thal=["awful"] * len(f)), "column 'thal' has 'awful'"),
        (lambda f: f.assign(age=[500] * len(f)), "column 'age' has 500"),
        (lambda f: f.assign(target=[None] * len(f)), "column 'target' is empty"),
        (lambda f: f.assign(target=[2] * len(f)), "column 'target' has 2"),
        (lambda f: f.assign(target=[1] * len(f)), "one class only"),
        (lambda f: f.head(0), "no rows"),
    ],
)
def test_user_csv_errors_name_the_column(tmp_path: Path, canonical_frame: pd.DataFrame, change, message: str) -> None:
    path = write_csv(tmp_path / "bad.csv", change(canonical_frame))
    with pytest.raises(DataError) as error:
        load_heart_csv(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_digits_are_sklearns_8x8_counts() -> None:
    data = load_digits_data()
    assert data.X.shape == (1797, 64) and data.X.dtype == np.float32
    assert data.X.min() == 0 and data.X.max() == 16
    assert np.bincount(data.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
