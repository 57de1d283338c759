"""The run's page: what it compares, what it shows, where it is written, and how a browser sees it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from digit_recognizer.report import REPORT_DATASET, compare, previous_run, render_report
from digit_recognizer.report.page import changed_from_defaults
from digit_recognizer.runs import main as runs_main
from digit_recognizer.runstore import RunStore
from digit_recognizer.runstore.retention import prune

from .conftest import kedro, run_record

PNG = "data/08_reporting/conv/training_curves.png/{run}/training_curves.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def row(accuracy: float, test: float | None = None) -> dict:
    return {"architecture": "conv", "validation_accuracy": accuracy, "test_score": test, "parameters": 29_770}


def inputs(sha: str = "a" * 64, rows: int = 4000, ones: int = 450) -> dict:
    labels = {str(d): 400 for d in range(10)} | {"1": ones}
    return {"raw_train": {"path": "data/01_raw/train.csv", "bytes": 1, "sha256": sha, "rows": rows, "labels": labels}}


def test_a_changed_parameter_a_dropped_score_and_a_changed_input_are_named():
    before = run_record(
        "2026-12-01T02.30.00.000Z",
        parameters={"conv": {"epochs": 40, "lr": 0.1}},
        metrics={"conv": row(0.9800, 0.9810), "mlp": row(0.9500)},
        inputs=inputs(),
    )
    now = run_record(
        "2026-12-02T02.30.00.000Z",
        parameters={"conv": {"epochs": 20, "lr": 0.1}},
        metrics={"conv": row(0.9775, 0.9805), "mlp": row(0.9495)},
        inputs=inputs(sha="b" * 64, ones=449),
    )
    # 800 validation digits: one digit is 0.00125; 1,000 test digits: 0.001
    rows = {"conv": {"validation_accuracy": 800, "test_score": 1000}, "mlp": {"validation_accuracy": 800}}
    comparison = compare(now, before, rows)
    assert comparison.previous == before.run_id
    changes = {(s.key, s.measure): s for s in comparison.scores}
    assert changes["conv", "validation"].dropped  # two digits fewer right
    assert round(changes["conv", "validation"].digits) == -2
    assert not changes["conv", "test (solution.csv)"].dropped  # half a digit: noise
    assert not changes["mlp", "validation"].dropped  # under one digit (0.0005 * 800 = 0.4)
    assert [s.key for s in comparison.dropped] == ["conv"]
    assert [(c.name, c.before, c.after) for c in comparison.parameters] == [("conv.epochs", 40, 20)]
    assert [c.name for c in comparison.inputs] == ["raw_train sha256", "raw_train labels"]
    assert compare(now, None, rows).previous is None and not compare(now, None, rows).scores


def test_the_run_compared_with_is_the_newest_earlier_one_of_the_same_pipelines():
    runs = [  # newest first, as RunStore.complete() gives them
        run_record("2026-12-03T00.00.00.000Z", pipelines=["conv"]),
        run_record("2026-12-02T00.00.00.000Z", pipelines=["cnn"]),
        run_record("2026-12-01T12.00.00.000Z", pipelines=["conv"]),
        run_record("2026-12-01T00.00.00.000Z", pipelines=["conv"]),
    ]
    now = run_record("2026-12-02T12.00.00.000Z", pipelines=["conv"])
    assert previous_run(runs, now).run_id == "2026-12-01T12.00.00.000Z"
    assert previous_run(runs[:2], now) is None


def test_parameters_that_differ_from_the_defaults_are_listed_with_the_default():
    from digit_recognizer.config import check_parameters, parameter_defaults

    effective = check_parameters({"conv": {"architecture": "conv", "epochs": 40}, "split": {"seed": 7}})
    defaults = parameter_defaults(effective)
    changed = {key: (value, default) for key, value, default in changed_from_defaults(effective, defaults)}
    assert changed == {"conv.epochs": (40, 10), "split.seed": (7, 42)}


def fake_run(project: Path, run_id: str, accuracy: float, **fields) -> None:
    """A complete conv run in ``project``'s store, with a plot and validation metrics on disk."""
    png = PNG.format(run=run_id)
    (project / png).parent.mkdir(parents=True)
    figure = Figure(figsize=(2, 1))
    figure.subplots().plot([0, 1], [1, 0])
    figure.savefig(project / png)
    metrics_file = f"data/08_reporting/conv/validation_metrics.json/{run_id}/validation_metrics.json"
    (project / metrics_file).parent.mkdir(parents=True)
    per_class = {str(d): 0.99 for d in range(10)}
    matrix = [[80 if i == j else 0 for j in range(10)] for i in range(10)]
    (project / metrics_file).write_text(
        json.dumps({"per_class_accuracy": per_class, "confusion_matrix": matrix, "validation_rows": 800})
    )
    record = run_record(
        run_id,
        metrics={"conv": row(accuracy)},
        outputs={"conv.training_curves_plot": png, "conv.validation_metrics": metrics_file},
        inputs=inputs(),
        **fields,
    )
    store = RunStore.at(project)
    (store.root / run_id).mkdir(parents=True)
    (store.root / run_id / "journal").write_text(f"{(project / png).parent}\n{(project / metrics_file).parent}\n")
    record.write(store.root / run_id / "run.json")


def test_the_page_carries_its_images_and_fetches_nothing(tmp_path):
    fake_run(tmp_path, "2026-12-01T00.00.00.000Z", 0.98)
    fake_run(tmp_path, "2026-12-02T00.00.00.000Z", 0.97)
    store = RunStore.at(tmp_path)
    [now, before] = store.complete()
    html = render_report(now, tmp_path, store.complete())
    assert now.run_id in html and 'data-architecture="conv"' in html
    assert re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)  # the plot, inline
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # no link or image leaves the page
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # and a browser is told to fetch nothing
    assert f"Since run {before.run_id}: 1 score dropped" in html  # 0.98 → 0.97 on 800 digits
    first = render_report(before, tmp_path, store.complete())
    assert "nothing to compare with" in first


def report_file(run_id: str) -> Path:
    """Where the catalog's run_report puts a run's page, relative to the project."""
    return Path("data/08_reporting/report.html") / run_id / "report.html"


def test_a_page_is_written_for_an_old_run_and_deleted_with_it(project, capsys, monkeypatch):
    tmp_path = project
    monkeypatch.chdir(project)  # the project folder, where the paths in records start
    fake_run(tmp_path, "2026-12-01T00.00.00.000Z", 0.98)
    fake_run(tmp_path, "2026-12-02T00.00.00.000Z", 0.98)
    old = "2026-12-01T00.00.00.000Z"
    assert runs_main(["report", old]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page == tmp_path / report_file(old) and old in page.read_text()
    store = RunStore.at(tmp_path)
    assert store.record(old).outputs[REPORT_DATASET] == str(report_file(old))
    assert runs_main(["report", old]) == 0 and Path(capsys.readouterr().out.strip()) == page  # not made twice
    assert runs_main(["report", "--output", str(tmp_path / "latest.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "latest.html")
    assert "2026-12-02T00.00.00.000Z" in (tmp_path / "latest.html").read_text()
    assert runs_main(["report"]) == 0  # the latest run's own page (retention keeps whoever wrote a latest version)
    assert Path(capsys.readouterr().out.strip()) == tmp_path / report_file("2026-12-02T00.00.00.000Z")
    prune(store, keep=1)
    assert not page.exists() and not page.parent.exists()  # deleted with its run
    assert runs_main(["report", "2026-11-01T00.00.00.000Z"]) == 1
    assert "no complete run 2026-11-01T00.00.00.000Z" in capsys.readouterr().err


@pytest.mark.slow
def test_each_run_writes_its_page_and_a_browser_shows_it(project, tmp_path):
    first = kedro(project, "run", "--pipeline", "conv", "--params", "conv.epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    second = kedro(project, "run", "--pipelines", "conv,centroid", "--params", "conv.epochs=2")
    assert second.returncode == 0, second.stderr[-3000:]
    third = kedro(project, "run", "--pipeline", "conv", "--params", "conv.epochs=2,conv.lr=0.05")
    assert third.returncode == 0, third.stderr[-3000:]
    store = RunStore.at(project)
    records = store.complete()
    latest, _, oldest = records
    page = project / latest.outputs[REPORT_DATASET]
    assert page == project / report_file(latest.run_id)
    assert f"report: {report_file(latest.run_id)}" in third.stdout + third.stderr  # the closing lines name it
    html = page.read_text()
    assert f"Since run {oldest.run_id}" in html  # the last run of the same pipelines (not conv,centroid)
    assert "conv.epochs" in html and "conv.lr" in html  # what changed
    assert page.stat().st_size < 2_000_000
    first_page = (project / oldest.outputs[REPORT_DATASET]).read_text()
    assert "nothing to compare with" in first_page
    if CHROMIUM:
        seen = in_browser(page, tmp_path)
        assert latest.run_id in seen["text"] and "conv" in seen["rows"]
        assert seen["images"] >= 3 and seen["broken"] == [], seen
        assert seen["blocked"] == [], seen  # nothing tried to leave the page
        # the probe sees what it looks for: a page with a broken image and one from the web
        bad = tmp_path / "bad.html"
        bad.write_text(page.read_text().replace("</main>", '<img alt="web" src="https://example.com/x.png"></main>'))
        seen = in_browser(bad, tmp_path)
        assert "web" in seen["broken"] and any("example.com" in uri for uri in seen["blocked"]), seen


def in_browser(page: Path, tmp_path: Path) -> dict:
    """What headless Chromium shows of ``page``: its text, leaderboard rows, images, blocked requests.

    The page forbids every fetch (its Content-Security-Policy); a copy with a probe script (and
    the same policy, plus that one script) records each image's state and every request the
    policy blocked, then Chromium prints the DOM.
    """
    html = page.read_text()
    probe = """<script>
    const blocked = [];
    document.addEventListener('securitypolicyviolation', e => blocked.push(e.blockedURI));
    window.addEventListener('load', () => setTimeout(() => {
      const images = [...document.images];
      const out = {text: document.body.innerText.slice(0, 20000),
        rows: [...document.querySelectorAll('#leaderboard-table tr[data-architecture]')].map(r => r.dataset.architecture),
        images: images.length,
        broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
        blocked: blocked};
      const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
      document.body.appendChild(pre);
    }, 200));
    </script>"""
    probed = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';").replace(
        "</head>", probe + "</head>"
    )
    copy = tmp_path / "probed.html"
    copy.write_text(probed)
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
            copy.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    import html as html_module

    return json.loads(html_module.unescape(found.group(1)))


@pytest.mark.slow
def test_a_page_that_cannot_be_written_fails_the_run_and_leaves_nothing(project):
    blocker = project / "data" / "08_reporting" / "report.html"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the page's folder should be")  # its version folder cannot be made
    result = kedro(project, "run", "--pipeline", "conv", "--params", "conv.epochs=1")
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert "Could not write dataset 'run_report' to " in out and "Not a directory (errno ENOTDIR)" in out, out[-2000:]
    assert "Traceback" not in out
    assert RunStore.at(project).complete() == []  # no record: the run did not happen
    assert not [p for p in (project / "data" / "06_models").rglob("*") if p.is_file()]  # what it wrote is gone


def test_a_run_without_models_or_inputs_and_an_old_record_still_get_a_page(tmp_path):
    bare = run_record("2026-12-02T00.00.00.000Z", pipelines=["data_processing"])  # no metrics, inputs, timings
    old = run_record(  # a record from before label counts, test scores and validation sizes were kept
        "2026-12-01T00.00.00.000Z",
        pipelines=["data_processing"],
        metrics={"conv": {"validation_accuracy": 0.97}},
        inputs={"raw_train": {"path": "train.csv", "bytes": 10, "sha256": "c" * 64}},
        host=None,
    )
    html = render_report(bare, tmp_path, [old])
    assert bare.run_id in html and f"Since run {old.run_id}" in html
    assert "not in this run" in html  # conv scored then, not now
    assert "raw_train" in html  # the input that is gone
