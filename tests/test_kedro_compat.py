"""The few protected Kedro APIs the project uses, checked against the installed Kedro."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DataCatalog

from digit_recognizer.framework.kedro_compat import end_redirect, local_versioned, pin, redirect_save, versioned_file


def _catalog(tmp_path: Path) -> DataCatalog:
    return DataCatalog.from_config(
        {
            "versioned": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "v.csv"), "versioned": True},
            "plain": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "plain.csv")},
            "cached": {
                "type": "CachedDataset",
                "versioned": True,
                "dataset": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "c.csv")},
            },
            "memory": {"type": "MemoryDataset"},
        }
    )


def test_only_local_versioned_datasets_are_handled(tmp_path):
    catalog = _catalog(tmp_path)
    assert local_versioned(catalog, "versioned") is not None
    assert local_versioned(catalog, "cached") is not None  # the dataset inside the cache
    # a local dataset without versions, a memory dataset and parameters are left to Kedro
    assert local_versioned(catalog, "plain") is None
    assert local_versioned(catalog, "memory") is None
    assert local_versioned(catalog, "params:split") is None


def test_pin_and_a_redirected_save(tmp_path):
    dataset = local_versioned(_catalog(tmp_path), "versioned")
    pin(dataset, "2026-11-27T00.00.00.000Z", "2026-11-27T00.00.00.000Z")  # as RunHooks pins an output
    final = versioned_file(dataset, "2026-11-27T00.00.00.000Z")
    assert final == tmp_path / "v.csv" / "2026-11-27T00.00.00.000Z" / "v.csv"
    temporary = final.with_name(".v.csv.tmp")
    final.parent.mkdir(parents=True)
    redirect_save(dataset, temporary)
    dataset.save(pd.DataFrame({"a": [1]}))
    end_redirect(dataset)
    assert temporary.exists() and not final.exists()
    temporary.rename(final)
    pin(dataset, "2026-11-27T00.00.00.000Z", None)
    assert dataset.load()["a"].tolist() == [1]
