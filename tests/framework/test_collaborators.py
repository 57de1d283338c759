"""The hooks' collaborators, each alone: the record builder, the run session, the page publisher, the CPU share."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node

from digit_recognizer.framework.publishers import PagePublisher
from digit_recognizer.framework.record_builder import RecordBuilder, roles
from digit_recognizer.framework.run_dataset import RunDataset
from digit_recognizer.framework.run_session import RunSession
from digit_recognizer.framework.threads import cpu_share
from digit_recognizer.runstore import RunState, RunStore, RunStoreSettings

RUN = "2026-12-01T00.00.00.000Z"


def _json(tmp_path, name: str, **metadata) -> RunDataset:
    return RunDataset(
        filepath=str(tmp_path / "data" / f"{name}.json"),
        dataset="json.JSONDataset",
        metadata={"digit_recognizer": metadata} if metadata else None,
    )


def test_the_record_builder_takes_each_role_from_the_catalogs_metadata(tmp_path):
    catalog = DataCatalog(
        {
            "conv.kaggle_file": _json(tmp_path, "f", record="submission", key="conv"),
            "conv_row": _json(tmp_path, "row", record="metrics", key="conv"),
            "a.submission": _json(tmp_path, "not-one"),  # named like one, declared as nothing
            "raw": MemoryDataset(metadata={"digit_recognizer": {"record": "input"}}),
        }
    )
    builder = RecordBuilder(tmp_path, {"conv": {"epochs": 1}}, roles(catalog, set(catalog.keys())))
    frame = pd.DataFrame({"label": [1, 1, 7]})
    frame.attrs.update(source=str(tmp_path / "raw" / "train.csv"), bytes=10, sha256="ab", labels={"1": 2, "7": 1})
    builder.dataset_started("raw", "load")
    builder.loaded("raw", frame)
    builder.dataset_finished("raw", "load")
    builder.dataset_finished("conv_row", "save")  # never started: nothing to time
    builder.saved("conv.kaggle_file", None, tmp_path / "data" / "f.json" / RUN / "f.json")
    builder.saved("a.submission", None, tmp_path / "data" / "not-one.json" / RUN / "not-one.json")
    builder.saved("conv_row", {"validation_accuracy": 0.9}, tmp_path / "data" / "row.json" / RUN / "row.json")
    builder.node_started("conv.train_model")
    builder.node_finished("conv.train_model")
    record = builder.build(RUN, {"pipeline_names": ["conv"], "env": "local"}, ["conv.train_model"], {})

    assert record.submissions == {"conv": f"data/f.json/{RUN}/f.json"}  # by its role, whatever its name
    assert record.metrics == {"conv": {"validation_accuracy": 0.9}}
    assert record.inputs["raw"] == {
        "path": str(tmp_path / "raw" / "train.csv"),
        "bytes": 10,
        "sha256": "ab",
        "rows": 3,
        "labels": {"1": 2, "7": 1},
    }
    assert record.raw_dir == str(tmp_path / "raw") and record.pipelines == ["conv"]
    assert [n["node"] for n in record.timings["nodes"]] == ["conv.train_model"]
    [timed] = record.timings["datasets"]  # where the seconds outside the nodes went
    assert timed["dataset"] == "raw" and timed["op"] == "load" and timed["seconds"] >= 0
    assert set(record.outputs) == {"conv.kaggle_file", "a.submission", "conv_row"}


def _pipeline() -> Pipeline:
    return Pipeline([node(lambda: {"a": 1}, None, "first", name="make"), node(lambda x: x, "first", "second")])


def test_a_run_session_claims_binds_commits_and_its_outputs_load_from_the_complete_run(tmp_path):
    store = RunStore(tmp_path / "runs", tmp_path)
    catalog = DataCatalog({"first": _json(tmp_path, "first"), "second": _json(tmp_path, "second")})
    session = RunSession(store)
    session.start({"run_id": RUN}, _pipeline(), catalog)
    assert session.run_id == RUN and store.state(RUN) is RunState.LIVE
    catalog.get("first").save({"a": 1})
    assert session.file("first") == tmp_path / "data" / "first.json" / RUN / "first.json"
    path = session.commit(_record(outputs={"first": f"data/first.json/{RUN}/first.json"}))
    assert store.state(RUN) is RunState.COMPLETE and path == tmp_path / "runs" / RUN / "run.json"

    again = RunSession(store)  # the same id is taken now: the next one
    again.start({"run_id": RUN}, Pipeline([node(lambda x: x, "first", "second")]), catalog)
    assert again.run_id != RUN and again.plan.reads == {"first": RUN}  # reads the complete run's version
    assert again.roll_back() == [] and store.state(again.run_id) is None


def test_a_failing_commit_deletes_what_the_run_wrote(tmp_path):
    store = RunStore(tmp_path / "runs", tmp_path)
    catalog = DataCatalog({"first": _json(tmp_path, "first"), "second": _json(tmp_path, "second")})
    session = RunSession(store)
    session.start({"run_id": RUN}, _pipeline(), catalog)
    catalog.get("first").save({"a": 1})

    def page_fails(record):
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        session.commit(_record(), before=page_fails)
    assert store.state(RUN) is None and not (tmp_path / "data" / "first.json" / RUN).exists()


def _record(**fields):
    from ..conftest import run_record

    return run_record(RUN, **fields)


def test_the_page_publisher_writes_where_the_catalog_says_and_journals_it_first(tmp_path):
    page = RunDataset(filepath=str(tmp_path / "pages" / "report.html"), dataset="text.TextDataset")
    catalog = DataCatalog({"run_report": page})
    journalled = []
    settings = RunStoreSettings(project=tmp_path)
    written = PagePublisher(catalog, settings).publish(_record(), [], journalled.append)
    assert written == {"run_report": f"pages/report.html/{RUN}/report.html"}
    assert journalled == [tmp_path / "pages" / "report.html" / RUN]
    assert RUN in (tmp_path / "pages" / "report.html" / RUN / "report.html").read_text()
    assert PagePublisher(DataCatalog({}), settings).publish(_record(), [], journalled.append) == {}


def test_the_settings_come_from_the_configuration_and_the_operators_variables(tmp_path):
    from kedro.config import OmegaConfigLoader

    from digit_recognizer.framework.project import store_settings
    from digit_recognizer.runstore import SettingsError

    for folder, files in {
        "base": {"globals.yml": "data_root: data\n", "runstore.yml": "lease_ttl: 30\nretries: 1\n"},
        "local": {
            "runstore.yml": "lease_ttl: 20\n",
            "credentials.yml": "data_root: {key: the-key-id, secret: the-secret-value}\n",
        },
    }.items():
        (tmp_path / "conf" / folder).mkdir(parents=True)
        for name, text in files.items():
            (tmp_path / "conf" / folder / name).write_text(text)
    loader = OmegaConfigLoader(
        str(tmp_path / "conf"),
        base_env="base",
        default_run_env="local",
        runtime_params={"data_root": "s3://bucket/x"},
        config_patterns={"runstore": ["runstore*"]},
    )
    settings = store_settings(loader, tmp_path)
    assert (settings.lease_ttl, settings.retries, settings.data_root) == (20, 1, "s3://bucket/x")
    assert settings.runs_root == "s3://bucket/x/runs"
    options = settings.options_for("s3://bucket/x/runs")
    assert options["key"] == "the-key-id" and options["config_kwargs"]["read_timeout"] == 5
    assert "key" not in settings.options_for("gs://other/y")  # the data root's credentials go nowhere else
    assert "the-secret-value" not in json.dumps(settings.model_dump(mode="json")) + repr(settings)  # never written out

    overridden = RunStoreSettings.build(
        tmp_path, environ={"DIGIT_RECOGNIZER_LEASE_TTL": "2", "DIGIT_RECOGNIZER_RUNS_DIR": "r"}
    )
    assert overridden.lease_ttl == 2 and overridden.runs_root == tmp_path / "r"
    with pytest.raises(SettingsError, match=r"lease_ttl: Input should be greater than 0"):
        RunStoreSettings.build(tmp_path, config={"lease_ttl": 0}, environ={})
    with pytest.raises(SettingsError, match=r"leese_ttl: Extra inputs are not permitted"):
        RunStoreSettings.build(tmp_path, config={"leese_ttl": 3}, environ={})


def test_a_request_never_outlives_the_lease_it_writes_under():
    from digit_recognizer.runstore import SettingsError

    default = RunStoreSettings.build(environ={})
    assert default.request_limit <= default.lease_ttl * 2 / 3  # 2 x (3 + 5) s + 1 s = 17 s <= 20 s
    assert default.options_for("s3://b/x")["config_kwargs"] == {
        "connect_timeout": 3.0,
        "read_timeout": 5.0,
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
    for ttl in (1.5, 3.0, 12.0):  # a shorter lease (an operator's, a test's): the default waits shrink to fit
        fitted = RunStoreSettings.build(environ={"DIGIT_RECOGNIZER_LEASE_TTL": str(ttl)})
        assert 0 < fitted.request_limit <= ttl * 2 / 3 + 1e-9, (ttl, fitted)
        assert fitted.connect_timeout < fitted.read_timeout
    with pytest.raises(SettingsError, match=r"connect_timeout, read_timeout, retries: one request may wait up to 27 s"):
        RunStoreSettings.build(config={"retries": 3}, environ={})  # set, and too long for a 30 s lease
    assert RunStoreSettings.build(config={"lease_ttl": 60, "retries": 3}, environ={}).retries == 3
    assert "2 attempts of 3 s to connect and 5 s for an answer, 17 s in all" in default.waits()


def test_the_cpu_share_counts_only_the_nodes_that_take_it():
    pipeline = Pipeline(
        [
            node(lambda s: 1, "cpu_share", "a", name="a"),
            node(lambda s: 1, "cpu_share", "b", name="b"),
            node(lambda: 1, None, "plot", name="plot"),
        ]
    )
    assert cpu_share("ThreadRunner", pipeline, environ={}) == 2  # the plot takes no share
    assert cpu_share("SequentialRunner", pipeline, environ={}) == 1


def test_kedros_resume_advice_is_left_out_of_a_failed_run(caplog):
    from kedro.runner import SequentialRunner

    from digit_recognizer.framework.console import hide_resume_hints

    def fail(value: int) -> int:
        raise ValueError("the second node fails")

    pipeline = Pipeline([node(lambda: 1, None, "one", name="first"), node(fail, "one", "two", name="second")])
    hide_resume_hints()
    with caplog.at_level(logging.INFO), pytest.raises(ValueError, match="the second node fails"):
        SequentialRunner().run(pipeline, DataCatalog({}))
    said = "\n".join(record.getMessage() for record in caplog.records)
    assert "Completed node: first" in said  # the runner's log is there, its advice is not
    assert "--from-nodes" not in said and "nodes that have not run" not in said
    with caplog.at_level(logging.INFO), pytest.raises(ValueError):
        SequentialRunner().run(
            Pipeline([node(fail, "one", "two", name="second")]), DataCatalog({"one": MemoryDataset(1)})
        )
    assert "Repeat the previous command" not in caplog.text
