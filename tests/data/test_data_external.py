"""External tables: presets for the published datasets, typed mappings, the training-table schema."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from defectops.data.external import PRESETS, ColumnMapping, detect_preset, load_table, resolve_mapping
from defectops.data.schemas import FEATURES, feature_columns, validate_training_table
from defectops.errors import DataError, InputError

KAMEI_HEADER = "transactionid,commitdate,ns,nm,nf,entropy,la,ld,lt,fix,ndev,pd,npt,exp,rexp,sexp,bug"
# Two rows of bugzilla.csv as published (transactions 3 and 143) and one made-up clean row.
KAMEI_ROWS = [
    "3,2001/12/12 17:41,1,1,3,0.579380164,0.093619972,0,480.6666667,1,14,596,0.666666667,143,133.5,129,1",
    "143,2003/1/28 20:39,4,4,21,0.829655,21,13495,0,0,32,1507,0.809524,113,81.166667,108,0",
    "7,1999/10/12 12:57,1,1,1,0,0,0,398,1,1,0,1,140,140,137,0",
]
OPENSTACK_HEADER = ",_id,date,bug,__,ns,nd,nf,entrophy,la,ld,lt,fix,ndev,age,nuc,exp,rexp,sexp"
OPENSTACK_ROWS = [
    "0,14295be0edba4070a604d93b4e9acb91d5ed39d2,1451578374,0,0,1,1,1,0.0,1,0,214,1,15,84.02,53,1842,349.25,7",
    "1,0845300d1993ca749f0e661ad744ccb721c87e7c,1451675025,2,1,1,1,1,0.0,6,5,517,1,17,45.01,42,73,3.34,47",
]


def write(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_kamei_preset_unnormalises_the_packaging(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "bugzilla.csv", KAMEI_HEADER, KAMEI_ROWS))
    first = table.iloc[0]
    # LT = lt * nf = 480.6666667 * 3 = 1442; LA = la * LT = 0.093619972 * 1442 = 135.0; LD = 0 * 1442 = 0
    assert first["lt"] == 1442
    assert first["la"] == 135
    assert first["ld"] == 0
    # NUC = npt * nf = 0.666666667 * 3 = 2; nm is ND, pd is AGE
    assert first["nuc"] == 2
    assert first["nd"] == 1
    assert first["age"] == 596
    assert first["churn"] == 135  # effort = LA + LD
    assert first["label"] == 1
    assert first["time"] == pd.Timestamp("2001-12-12 17:41", tz="UTC")
    assert first["commit"] == "3"
    # transaction 143 has lt = 0: la and ld were never divided; LT = 0 * 21 = 0, LA = 21, LD = 13495
    second = table.iloc[1]
    assert (second["lt"], second["la"], second["ld"], second["churn"]) == (0, 21, 13495, 13516)
    # NUC = 0.809524 * 21 = 17.000004 -> 17
    assert second["nuc"] == 17
    assert list(table.columns[:14]) == list(FEATURES)
    assert feature_columns(table) == list(FEATURES)


def test_openstack_preset(tmp_path: Path) -> None:
    path = write(tmp_path, "openstack.csv", OPENSTACK_HEADER, OPENSTACK_ROWS)
    assert detect_preset(list(pd.read_csv(path).columns)) == "openstack"
    table = load_table(path)
    # label = bug > 0 (2 -> 1); date is unix seconds; entrophy -> entropy; "__" (a label copy) is no feature
    assert list(table["label"]) == [0, 1]
    assert table["time"].iloc[0] == pd.Timestamp(1451578374, unit="s", tz="UTC")
    assert "__" not in table.columns
    assert "entropy" in table.columns
    assert list(table["churn"]) == [1, 11]  # 1 + 0 and 6 + 5
    assert table["commit"].iloc[1] == "0845300d1993ca749f0e661ad744ccb721c87e7c"


def test_custom_mapping_from_json_with_text_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "when": ["2024-01-02T10:00:00Z", "2024-01-03T10:00:00+02:00"],
            "buggy": [True, False],
            "added": [10, 3],
            "removed": [2, 0],
            "files": [2, 1],
            "effort_minutes": [30.0, 5.0],
            "msg": ["fix crash", None],
            "changed": ["src/a.py\nsrc/b.py", "README.md"],
        }
    )
    path = tmp_path / "export.parquet"
    frame.to_parquet(path)
    mapping = {
        "label": "buggy",
        "time": "when",
        "features": {"la": "added", "ld": "removed", "nf": "files"},
        "effort": "effort_minutes",
        "message": "msg",
        "paths": "changed",
    }
    spec = tmp_path / "mapping.json"
    spec.write_text(json.dumps(mapping))
    table = load_table(path, str(spec))
    assert list(table["label"]) == [1, 0]
    assert list(table["churn"]) == [30.0, 5.0]  # the named effort column, not la + ld
    assert table["time"].iloc[1] == pd.Timestamp("2024-01-03T08:00:00", tz="UTC")
    assert list(table["message"]) == ["fix crash", ""]
    assert feature_columns(table) == ["la", "ld", "nf"]
    # the same mapping inline
    assert load_table(path, json.dumps(mapping)).equals(table)


def test_problems_become_readable_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "a,b", ["1,2"])
    with pytest.raises(InputError, match="match no preset"):
        load_table(path)
    with pytest.raises(InputError, match="neither a preset"):
        load_table(path, "nonsense")
    with pytest.raises(InputError, match="invalid column mapping"):
        resolve_mapping({"label": "a"})
    with pytest.raises(DataError, match="lacks"):
        load_table(path, {"label": "a", "time": "when", "features": {"la": "b"}})
    bad = write(tmp_path, "bad.csv", "t,y,la,ld", ["2020-01-01,1,x,1"])
    with pytest.raises(DataError, match="not numeric"):
        load_table(bad, {"label": "y", "time": "t", "features": {"la": "la", "ld": "ld"}})
    with pytest.raises(InputError, match=r"expected a \.csv or \.parquet"):
        load_table(_touch(tmp_path / "x.xlsx"))


def _touch(path: Path) -> Path:
    path.write_text("")
    return path


def test_schema_rejects_impossible_values() -> None:
    good = pd.DataFrame(
        {
            "la": [1.0, 2.0],
            "churn": [1.0, 2.0],
            "label": [0, 1],
            "time": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True),
        }
    )
    assert len(validate_training_table(good, ["la"])) == 2
    with pytest.raises(DataError, match="la"):
        validate_training_table(good.assign(la=[-1.0, 2.0]), ["la"])
    with pytest.raises(DataError, match="label"):
        validate_training_table(good.assign(label=[0, 2]), ["la"])
    with pytest.raises(DataError, match="lacks"):
        validate_training_table(good.drop(columns=["time"]), ["la"])


def test_presets_are_typed_mappings() -> None:
    assert isinstance(PRESETS["kamei"], ColumnMapping)
    assert PRESETS["kamei"].features["nd"] == "nm"
    assert PRESETS["kamei"].features["age"] == "pd"
    assert PRESETS["kamei"].features["nuc"] == "npt"
    assert resolve_mapping("openstack") is PRESETS["openstack"]
    with pytest.raises(InputError, match="reserved"):
        resolve_mapping({"label": "y", "time": "t", "features": {"label": "x"}})


def test_schema_accepts_mined_dtypes() -> None:
    # the miner writes nullable Int64 / boolean columns; without missing values they coerce to float / int
    mined = pd.DataFrame(
        {
            "la": pd.array([3, 0], dtype="Int64"),
            "fix": pd.array([True, False], dtype="boolean"),
            "churn": pd.array([3, 0], dtype="Int64"),
            "label": [True, False],
            "time": pd.to_datetime(["2020-01-01", "2020-01-02"], utc=True).as_unit("us"),
        }
    )
    table = validate_training_table(mined, ["la", "fix"])
    assert table["fix"].tolist() == [1.0, 0.0]
    assert table["label"].dtype == "int64"
    with pytest.raises(DataError, match="la"):
        validate_training_table(mined.assign(la=pd.array([None, 1], dtype="Int64")), ["la", "fix"])
