"""The version plan of a run, without a session."""

from __future__ import annotations

import pytest

from digit_recognizer.framework.versions import VersionPlanError, plan_versions

RUN, OLD = "2026-11-28T00.00.00.000Z", "2026-11-27T00.00.00.000Z"


def latest(name: str) -> str | None:
    return {"conv.model": OLD, "validated_test": OLD}.get(name)


def test_writes_get_the_run_and_reads_the_latest_complete_run():
    plan = plan_versions(RUN, ["conv.model", "conv.submission", "validated_test"], {"conv.submission"}, {}, latest)
    assert plan.loads == {"conv.model": OLD, "conv.submission": RUN, "validated_test": OLD}
    assert plan.reads == {"conv.model": OLD, "validated_test": OLD} and plan.save == RUN


def test_a_pin_wins_over_latest():
    plan = plan_versions(RUN, ["conv.model"], set(), {"conv.model": "2026-01-01T00.00.00.000Z"}, latest)
    assert plan.loads == {"conv.model": "2026-01-01T00.00.00.000Z"}


def test_a_pin_on_a_dataset_the_run_writes_is_refused():
    with pytest.raises(VersionPlanError, match=r"--load-versions names conv\.model, which this run writes itself"):
        plan_versions(RUN, ["conv.model"], {"conv.model"}, {"conv.model": OLD}, latest)


def test_an_input_no_complete_run_wrote_is_named():
    with pytest.raises(VersionPlanError, match="No complete run has written cnn_summary, conv_summary yet"):
        plan_versions(RUN, ["conv_summary", "cnn_summary"], set(), {}, latest)


def test_a_part_reads_only_its_own_run():
    plan = plan_versions(
        RUN, ["split", "conv.model"], set(), {}, latest, earlier_parts={"split": RUN, "conv.model": RUN}
    )
    assert plan.loads == plan.reads == {"split": RUN, "conv.model": RUN}  # the closed run's record leaves these out
    with pytest.raises(VersionPlanError, match=f"Run {RUN} has not written split yet"):
        plan_versions(RUN, ["split"], set(), {}, latest, earlier_parts={"split": None})


def test_a_pinned_version_that_does_not_exist_lists_the_runs_that_do():
    with pytest.raises(
        VersionPlanError,
        match=r"conv\.model has no version 2020-01-01T00\.00\.00\.000Z \(complete runs that wrote it, newest first: "
        + OLD.replace(".", r"\."),
    ):
        plan_versions(
            RUN,
            ["conv.model"],
            set(),
            {"conv.model": "2020-01-01T00.00.00.000Z"},
            latest,
            exists=lambda name, version: version == OLD,
            writers=lambda name: [OLD],
        )
