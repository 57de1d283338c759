"""Raw files read, checked and hashed from a bucket as from a folder, with the same messages."""

from __future__ import annotations

import hashlib

import pytest

from digit_recognizer.framework.datasets import InputFileError, KaggleCSVDataset

from .conftest import RAW_DIR, S3_CREDENTIALS, s3_bucket


@pytest.fixture
def raw_bucket(s3_endpoint, monkeypatch, request) -> str:
    for name, value in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    import fsspec

    bucket = s3_bucket(s3_endpoint, f"raw-{request.node.name}")
    fs = fsspec.filesystem("s3")
    for name in ("train.csv", "test.csv"):
        fs.put_file(str(RAW_DIR / name), f"{bucket}/raw/{name}")
    fs.pipe_file(f"{bucket}/raw/digit-recognizer.zip", b"PK\x03\x04")
    fs.invalidate_cache()
    return f"s3://{bucket}"


def test_a_raw_file_in_a_bucket_loads_with_its_fingerprint(raw_bucket):
    frame = KaggleCSVDataset(filepath=f"{raw_bucket}/raw/train.csv", load_args={"dtype": "int16"}).load()
    local = (RAW_DIR / "train.csv").read_bytes()
    assert frame.attrs["source"] == f"{raw_bucket}/raw/train.csv"
    assert frame.attrs["sha256"] == hashlib.sha256(local).hexdigest() and frame.attrs["bytes"] == len(local)
    rows = local.count(b"\n") - 1  # the header
    assert len(frame) == rows and sum(frame.attrs["labels"].values()) == rows


def test_a_missing_raw_file_or_folder_in_a_bucket_is_named_as_on_a_disk(raw_bucket):
    with pytest.raises(InputFileError, match=rf"{raw_bucket}/raw/sample_submission.csv: file not found, but "):
        KaggleCSVDataset(filepath=f"{raw_bucket}/raw/sample_submission.csv").load()
    with pytest.raises(InputFileError, match=rf"the raw folder '{raw_bucket}/elsewhere' does not exist"):
        KaggleCSVDataset(filepath=f"{raw_bucket}/elsewhere/train.csv").load()
    assert KaggleCSVDataset(filepath=f"{raw_bucket}/raw/solution.csv", optional=True).load() is None


def test_a_raw_dir_that_names_a_file_says_so(tmp_path):
    (tmp_path / "train.csv").write_text("label,pixel0\n1,0\n")
    with pytest.raises(InputFileError, match=r"raw_dir '.*/train\.csv' is a file, not a folder"):
        KaggleCSVDataset(filepath=str(tmp_path / "train.csv" / "train.csv")).load()
