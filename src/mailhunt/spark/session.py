"""Start (or join) the Spark session a hunt runs its rules in, or say in one sentence why it cannot."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from typing import Any

DEFAULT_MASTER = "local[*]"
MIN_JAVA = 17
INSTALL_HINT = "pip install 'mailhunt[spark]'"

# Spark settings every hunt needs for the same answers as DuckDB: UTC, timestamps read as written, the SQL
# semantics the transpiled queries assume (a missing map key or a bad cast is NULL, not an error).
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.codegen.wholeStage": "false",
}


class SparkUnavailable(Exception):
    """The Spark engine cannot start here: pyspark or Java is missing, or the session did not come up."""


def java_version(java: str) -> int | None:
    """The major version of the ``java`` executable (``java -version``), or None when it does not say."""
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def find_java() -> str | None:
    """The java executable Spark would start: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def pyspark_installed() -> bool:
    return importlib.util.find_spec("pyspark") is not None


def check_requirements() -> None:
    """Raise SparkUnavailable naming what is missing: pyspark, or Java 17+ (the driver runs here whatever the
    master)."""
    if not pyspark_installed():
        raise SparkUnavailable(f"the Spark engine needs pyspark, which is not installed: {INSTALL_HINT}")
    java = find_java()
    if java is None:
        raise SparkUnavailable(f"the Spark engine needs Java {MIN_JAVA} or later, and no java was found "
                               "(set JAVA_HOME or put java on PATH; on Debian: apt-get install default-jre-headless)")
    version = java_version(java)
    if version is not None and version < MIN_JAVA:
        raise SparkUnavailable(f"the Spark engine needs Java {MIN_JAVA} or later; {java} is Java {version}")


def under_spark_submit() -> bool:
    """Whether ``spark-submit`` started this Python (it passes its gateway to the driver program): its
    ``--master`` and settings then apply unless ``--spark-master`` says otherwise."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def start_session(master: str | None = None) -> Any:
    """The active Spark session (a test's), else a new one on ``master`` (default: the master ``spark-submit``
    was given, else ``local[*]``), with ``SESSION_SETTINGS`` applied."""
    check_requirements()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    shown = master or ("the master spark-submit was given" if under_spark_submit() else DEFAULT_MASTER)
    try:
        if active is None:
            builder = SparkSession.builder.appName("mailhunt")
            if master or not under_spark_submit():
                builder = builder.master(master or DEFAULT_MASTER)
            for key, value in SESSION_SETTINGS.items():
                builder = builder.config(key, value)
            active = builder.getOrCreate()
            active.sparkContext.setLogLevel("ERROR")
        for key, value in SESSION_SETTINGS.items():
            if not key.startswith("spark.ui."):
                active.conf.set(key, value)
    except Exception as exc:  # the JVM or the cluster can fail in many ways: say it in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailable(f"Spark did not start on {shown}: {first}") from exc
    return active
