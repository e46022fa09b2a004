"""``--engine spark`` without pyspark or Java stops before reading any evidence and says what to install."""

from pathlib import Path

from typer.testing import CliRunner

from mailhunt import cli
from mailhunt.spark import session

INCIDENT = Path(__file__).resolve().parent.parent / "examples" / "incident-2026-10"


def _hunt(out: Path, *extra: str):
    return CliRunner().invoke(cli.app, ["hunt", str(INCIDENT / "purview_audit_export.csv"), "--out", str(out),
                                        "--engine", "spark", *extra])


def test_without_pyspark_it_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(session, "pyspark_installed", lambda: False)
    result = _hunt(tmp_path / "case")
    assert result.exit_code == cli.USAGE_ERROR
    assert "pip install 'mailhunt[spark]'" in result.output
    assert not (tmp_path / "case" / "case.duckdb").exists(), "no evidence is read before Spark can start"


def test_without_java_it_names_java_17(tmp_path, monkeypatch):
    monkeypatch.setattr(session, "pyspark_installed", lambda: True)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk-here"))
    result = _hunt(tmp_path / "case")
    assert result.exit_code == cli.USAGE_ERROR
    assert "Java 17 or later" in result.output and "default-jre-headless" in result.output
    assert not (tmp_path / "case" / "case.duckdb").exists()


def test_java_older_than_17_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setattr(session, "pyspark_installed", lambda: True)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    result = _hunt(tmp_path / "case")
    assert result.exit_code == cli.USAGE_ERROR
    assert "is Java 11" in result.output


def test_spark_options_need_the_spark_engine(tmp_path):
    result = CliRunner().invoke(cli.app, ["hunt", str(INCIDENT), "--out", str(tmp_path / "case"),
                                          "--spark-master", "local[2]"])
    assert result.exit_code == cli.USAGE_ERROR and "--engine spark" in result.output


def test_a_parquet_folder_mailhunt_did_not_write_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(session, "pyspark_installed", lambda: True)
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "someone-elses.txt").write_text("keep me")
    result = _hunt(tmp_path / "case", "--spark-data", str(folder))
    assert result.exit_code == cli.USAGE_ERROR and "did not write" in result.output
    assert (folder / "someone-elses.txt").read_text() == "keep me"
