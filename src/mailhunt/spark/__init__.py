"""Apache Spark as the engine that runs the rules, for cases that outgrow one machine.

``mailhunt hunt --engine spark`` loads the evidence into the case as always,
writes the case's events as Parquet partitioned by date and source
(``parquet.write_events``), and runs identity resolution's queries, the
resolved-events relations, every single-event rule and every correlation in
Spark (``rules.SparkRules``), from the same SQL the DuckDB engine runs,
transpiled once by sqlglot. What Spark computes (matches, correlation
instances, the identity pairs) comes back into the case store, so grouping
and the reports read the same tables and write the same findings. Triage asks
its questions over the events (``case_queries.EVENT_QUESTIONS``) of the same
Spark session (``SparkRules.ask``/``keep``) and decides on the rows it gets.

pyspark is an optional extra (``pip install 'mailhunt[spark]'``) and needs
Java 17 or later; ``session.start_session`` says which is missing.
"""

from pathlib import Path

from mailhunt.spark.session import SparkUnavailable, start_session

__all__ = ["SparkUnavailable", "spark_rule_engine", "start_session"]


def spark_rule_engine(master: str | None = None, events_folder: Path | None = None):
    """The ``hunt(rule_engine=...)`` factory for Spark: starts (or joins) the session now, so that a missing
    pyspark or Java is said before any evidence is read; writes the case's events as Parquet to
    ``events_folder`` (default: ``events.parquet`` in the case folder) when the hunt calls it."""
    from mailhunt.spark.parquet import (
        DEFAULT_FOLDER,
        EventsFolderInUse,
        check_events_folder,
        write_events,
    )
    from mailhunt.spark.rules import SparkRules

    if events_folder is not None:
        try:
            check_events_folder(events_folder)
        except EventsFolderInUse as exc:
            raise SparkUnavailable(f"--spark-data: {exc}") from None
    spark = start_session(master)

    def make(store, case_folder: Path) -> SparkRules:
        folder = write_events(store, events_folder or case_folder / DEFAULT_FOLDER)
        return SparkRules(store, spark, folder)

    return make
