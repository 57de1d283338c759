"""RunDataset: versioned by run, saved atomically, journalled, and previewable."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from digit_recognizer.framework import RunDataset

V1, V2 = "2026-11-27T00.00.00.000Z", "2026-11-28T00.00.00.000Z"


def _csv(tmp_path) -> RunDataset:
    return RunDataset(
        filepath=str(tmp_path / "x.csv"), dataset={"type": "pandas.CSVDataset", "save_args": {"index": False}}
    )


def test_saves_under_the_bound_version_and_journals_the_folder_first(tmp_path):
    dataset, noted = _csv(tmp_path), []
    dataset.bind("x", load=None, save=V1, journal=lambda folder: noted.append((folder, folder.exists())))
    dataset.save(pd.DataFrame({"a": [1, 2]}))
    assert (tmp_path / "x.csv" / V1 / "x.csv").is_file()
    assert noted == [(tmp_path / "x.csv" / V1, False)]  # noted before anything was written
    assert list((tmp_path / "x.csv" / V1).iterdir()) == [tmp_path / "x.csv" / V1 / "x.csv"]  # no temporary left


def test_loads_the_bound_version_else_the_newest(tmp_path):
    for version, value in ((V1, 1), (V2, 2)):
        dataset = _csv(tmp_path)
        dataset.bind("x", load=None, save=version, journal=None)
        dataset.save(pd.DataFrame({"a": [value]}))
    assert _csv(tmp_path).load()["a"].tolist() == [2]
    pinned = _csv(tmp_path)
    pinned.bind("x", load=V1, save=V2, journal=None)
    assert pinned.load()["a"].tolist() == [1]


def test_a_failed_save_leaves_no_file_and_names_the_dataset(tmp_path):
    dataset = RunDataset(filepath=str(tmp_path / "m.json"), dataset="json.JSONDataset")
    dataset.bind("conv.validation_metrics", load=None, save=V1, journal=None)
    (tmp_path / "m.json" / V1).mkdir(parents=True)
    (tmp_path / "m.json" / V1 / ".m.json.tmp").mkdir()  # the temporary name is taken by a folder: the write fails
    with pytest.raises(
        DatasetError, match=r"^Could not write dataset 'conv.validation_metrics' to .*m\.json.*: Is a directory"
    ):
        dataset.save({"a": 1})
    assert not (tmp_path / "m.json" / V1 / "m.json").exists()


def test_never_overwrites_a_version(tmp_path):
    dataset = _csv(tmp_path)
    dataset.bind("x", load=None, save=V1, journal=None)
    dataset.save(pd.DataFrame({"a": [1]}))
    with pytest.raises(DatasetError, match="must not exist"):
        dataset.save(pd.DataFrame({"a": [2]}))


def test_previews_as_the_wrapped_dataset_does(tmp_path):
    dataset = _csv(tmp_path)
    dataset.bind("x", load=None, save=V1, journal=None)
    dataset.save(pd.DataFrame({"a": [1]}))
    assert (
        inspect.signature(dataset.preview).return_annotation in ("TablePreview",)
        or getattr(inspect.signature(dataset.preview).return_annotation, "__name__", None) == "TablePreview"
    )
    assert dataset.preview()["data"] == [[1]]
    assert not hasattr(
        RunDataset(filepath=str(tmp_path / "y.pt"), dataset="digit_recognizer.framework.datasets.KaggleCSVDataset"),
        "nothing",
    )


def test_declared_in_a_catalog_and_inside_a_cache(tmp_path):
    catalog = DataCatalog.from_config(
        {
            "plain": {
                "type": "digit_recognizer.framework.RunDataset",
                "filepath": str(tmp_path / "p.csv"),
                "dataset": "pandas.CSVDataset",
            },
            "cached": {
                "type": "CachedDataset",
                "versioned": True,
                "dataset": {
                    "type": "digit_recognizer.framework.RunDataset",
                    "filepath": str(tmp_path / "c.csv"),
                    "dataset": "pandas.CSVDataset",
                },
            },
        },
        save_version=V1,
    )
    catalog.save("plain", pd.DataFrame({"a": [1]}))
    catalog.save("cached", pd.DataFrame({"a": [2]}))
    assert (tmp_path / "p.csv" / V1 / "p.csv").is_file() and (tmp_path / "c.csv" / V1 / "c.csv").is_file()


def test_a_filepath_on_the_wrapped_dataset_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="give 'filepath' to the RunDataset"):
        RunDataset(filepath=str(tmp_path / "x.csv"), dataset={"type": "pandas.CSVDataset", "filepath": "y.csv"})
