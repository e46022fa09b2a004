"""``mailhunt serve``: the case in a browser, a thin layer over the case folder and its database.

Pages are rendered here (Jinja2, autoescaped, every value also passed
through ``visible_text`` so hidden characters show as escapes); questions go
to ``case_browse.CaseBrowser`` over the case database opened read-only for
each request, and closed after it, so a hunt can still open the case between
requests. The only writes are the analyst's (``case/review.py``): a
disposition, a verification answer, a sign-off, each also a custody entry;
``verify`` on demand is recorded in custody too. No route serves a file
outside the case folder: downloads are a fixed list of case files, and the
preserved evidence files listed in the manifest, checked to lie in
``evidence/``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import duckdb
import jinja2
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from mailhunt import __version__
from mailhunt.case import custody
from mailhunt.case.allowlist import suggest_allowlist
from mailhunt.case.evidence import EVIDENCE_DIR, read_manifest
from mailhunt.case.review import (
    DISPOSITION,
    DISPOSITIONS,
    SIGNOFF,
    VERIFICATION_ANSWER,
    VERIFICATION_ANSWERS,
    ReviewError,
    analyst_actions,
    case_review,
    record_action,
)
from mailhunt.case.show import raw_records_of
from mailhunt.case.verify import verify_case
from mailhunt.case_browse import (
    FINDING_SORTS,
    NO_DISPOSITION,
    CaseBrowser,
    FindingFilter,
)
from mailhunt.events import ZoneMissing, iso_z, utc_from_analyst
from mailhunt.report.html import SEVERITY_COLOURS, finding_view
from mailhunt.report.summary import SEVERITY_ORDER
from mailhunt.store import CaseOpenError, CaseStore
from mailhunt.visible import visible_text
from mailhunt.web import pictures
from mailhunt.web.security import (
    CSRF_FIELD,
    authenticate,
    cross_site_post,
    csrf_token,
    same_secret,
    with_headers,
)

FINDINGS_PER_PAGE = 50
EVENTS_PER_PAGE = 100
EVIDENCE_PER_PAGE = 20
LANE_BUCKETS = 120
AROUND = timedelta(hours=24)
MAX_AROUND_EVENTS = 3000
# name in the address -> file of the case folder; nothing else of the folder is served
CASE_FILES = {
    "findings.json": ("findings.json", "application/json"),
    "report.html": ("report.html", "text/html; charset=utf-8"),
    "report.md": ("report.md", "text/markdown; charset=utf-8"),
    "timeline.csv": ("timeline.csv", "text/csv; charset=utf-8"),
    "timeline.jsonl": ("timeline.jsonl", "application/x-ndjson"),
    "iocs.csv": ("iocs.csv", "text/csv; charset=utf-8"),
    "iocs.stix.json": ("iocs.stix.json", "application/json"),
    "findings.ocsf.jsonl": ("findings.ocsf.jsonl", "application/x-ndjson"),
    "custody.jsonl": ("custody.jsonl", "application/x-ndjson"),
    "manifest.json": (f"{EVIDENCE_DIR}/manifest.json", "application/json"),
}
STATIC_FILES = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
STATIC_DIR = Path(__file__).parent / "static"


class BadRequest(ValueError):
    """A parameter the page cannot use; shown on the page, never guessed around."""


def parse_utc_param(name: str, value: str | None) -> datetime | None:
    """A time from a form: ISO 8601 in UTC, written with ``Z`` (or ``+00:00``); anything else is refused."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return utc_from_analyst(text)
    except ZoneMissing as exc:
        raise BadRequest(f"{name}: {visible_text(text)!r} is not UTC; write it with a Z, like 2026-10-14T00:00:00Z") from exc
    except ValueError as exc:
        raise BadRequest(f"{name}: {visible_text(text)!r} is not a time; write UTC like 2026-10-14T00:00:00Z") from exc


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1_000_000))
    except ValueError:
        return 1


def _visible(value: object) -> object:
    """Jinja2 ``finalize``: every value a template prints has its hidden characters written out (markup the
    page built itself, already escaped, is left as it is)."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return visible_text(value)
    return value


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("mailhunt.web", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=_visible, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["utc"] = lambda moment: iso_z(moment) if isinstance(moment, datetime) else ""
    env.filters["pathpart"] = lambda value: quote(str(value), safe="")
    env.filters["lines"] = lambda value: escape(visible_text(value, keep_newlines=True))
    env.filters["raw_record"] = lambda value: (escape(visible_text(value, keep_newlines=True))
                                               if value is not None else Markup("<em>(no raw record kept)</em>"))
    return env


@dataclass
class Case:
    """The case folder served, and one lock so requests take turns with the database."""

    folder: Path
    lock: threading.Lock

    @property
    def database(self) -> Path:
        return self.folder / "case.duckdb"

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock, CaseStore(self.database, read_only=True) as store:
            yield store.db

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The database opened for writing the analyst's table only (not through ``CaseStore``, which would
        also bring an older case's events up to date: the page never changes the evidence)."""
        with self.lock:
            try:
                db = duckdb.connect(str(self.database))
            except duckdb.Error as exc:
                raise CaseOpenError(f"{self.database.name} cannot be opened to record the action: "
                                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
            try:
                db.execute("SET TimeZone = 'UTC'")
                yield db
            finally:
                db.close()


def create_app(case_dir: Path, token: str, analyst: str = "") -> FastAPI:
    """The application serving ``case_dir`` to whoever holds ``token``; ``analyst`` fills the name fields."""
    case = Case(Path(case_dir), threading.Lock())
    env = _environment()
    csrf = csrf_token(token)
    app = FastAPI(title="mailhunt serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        refused = authenticate(request, token)
        if refused is not None:
            return refused
        return with_headers(await call_next(request))

    @app.exception_handler(CaseOpenError)
    async def case_busy(request: Request, exc: CaseOpenError):
        return page("error.html", status=503, message=str(exc))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return page("error.html", status=400, message=str(exc))

    def check_csrf(request: Request, csrf_field: str = Form("", alias=CSRF_FIELD)) -> None:
        if cross_site_post(request) or not same_secret(csrf_field, csrf):
            raise HTTPException(403, "403 Forbidden: the form's CSRF token is missing or wrong; reload the page")

    def page(template: str, status: int = 200, **context) -> HTMLResponse:
        html = env.get_template(template).render(csrf=csrf, case_folder=str(case.folder), version=__version__,
                                                 analyst=analyst, severities=SEVERITY_ORDER,
                                                 dispositions=DISPOSITIONS, answers=VERIFICATION_ANSWERS,
                                                 colours=SEVERITY_COLOURS, **context)
        return HTMLResponse(html, status_code=status)

    @app.get("/")
    def home() -> Response:
        return RedirectResponse("/findings", status_code=303)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such file")
        return Response((STATIC_DIR / name).read_bytes(), media_type=STATIC_FILES[name])

    @app.get("/files/{name}")
    def case_file(name: str) -> Response:
        if name not in CASE_FILES:
            raise HTTPException(404, "not a case file served here")
        relative, media = CASE_FILES[name]
        path = case.folder / relative
        if path.is_symlink() or not path.is_file():
            raise HTTPException(404, "the case has no such file")
        return Response(path.read_bytes(), media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/evidence/files/{number}")
    def evidence_file(number: int) -> Response:
        """The preserved copy listed at ``number`` in the manifest, as a download; only inside ``evidence/``."""
        entries = [f for f in read_manifest(case.folder)["files"] if isinstance(f, dict)]
        if not 0 <= number < len(entries) or not isinstance(entries[number].get("evidence_path"), str):
            raise HTTPException(404, "no preserved copy with that number")
        root = (case.folder / EVIDENCE_DIR).resolve()
        path = root / entries[number]["evidence_path"]
        if not path.resolve().is_relative_to(root) or any(p.is_symlink() for p in (path, *path.parents)
                                                         if p.is_relative_to(root)) or not path.is_file():
            raise HTTPException(404, "the preserved copy is not a file inside evidence/")
        return Response(path.read_bytes(), media_type="application/octet-stream",
                        headers={"Content-Disposition": 'attachment; filename="evidence.bin"'})

    # ------------------------------------------------------------ findings

    @app.get("/findings")
    def findings(request: Request) -> Response:
        q = request.query_params
        escalate = {"yes": True, "no": False}.get(q.get("escalate") or "")
        keep = FindingFilter(indicator=q.get("indicator") or None, severity=q.get("severity") or None,
                             escalate=escalate, actor=q.get("actor") or None,
                             disposition=q.get("disposition") or None,
                             since=parse_utc_param("since", q.get("since")),
                             until=parse_utc_param("until", q.get("until")))
        sort = q.get("sort") or ""
        sort = sort if sort in FINDING_SORTS else "first_seen"
        descending = q.get("order") == "desc"
        number = _page_number(q.get("page"))
        with case.reading() as db:
            browser = CaseBrowser(db)
            listing = browser.findings_page(keep, sort, descending, FINDINGS_PER_PAGE,
                                            (number - 1) * FINDINGS_PER_PAGE)
            counts = browser.indicator_counts(keep)
            stories = browser.actor_stories(keep)
            choices = browser.filter_choices()
        shown = {k: v for k, v in q.items() if k in ("indicator", "severity", "escalate", "actor", "disposition",
                                                       "since", "until", "sort", "order") and v}

        def link(**change) -> str:
            return "/findings?" + urlencode({k: v for k, v in {**shown, **change}.items() if v})

        return page("findings.html", listing=listing, counts=counts, stories=stories, choices=choices,
                    shown=shown, sort=sort, descending=descending, number=number,
                    pages=max(1, -(-listing.total // FINDINGS_PER_PAGE)), link=link,
                    no_disposition=NO_DISPOSITION, sorts=list(FINDING_SORTS))

    def finding_context(db: duckdb.DuckDBPyConnection, finding_id: str, evidence_page: int) -> dict:
        browser = CaseBrowser(db)
        document = browser.finding_document(finding_id)
        if document is None:
            raise HTTPException(404, "no such finding in this case")
        view = finding_view(document, 0)
        evidence = [e for e in document.get("evidence") or [] if isinstance(e, dict)]
        start = (evidence_page - 1) * EVIDENCE_PER_PAGE
        shown_evidence = evidence[start:start + EVIDENCE_PER_PAGE]
        first, last = view_times(document)
        records = raw_records_of(db, case.folder, [str(e.get("event_id")) for e in shown_evidence],
                                 span_of(first, last))
        by_event: dict[str, list] = {}
        for record in records:
            by_event.setdefault(record.event_id, []).append(record)
        picture = None
        if first is not None and last is not None:
            people = [p for p in (document.get("actor"), *(document.get("targets") or [])) if isinstance(p, str)]
            around = browser.events_of_people(people, first - AROUND, last + AROUND, MAX_AROUND_EVENTS)
            picture = pictures.finding_window(around, first - AROUND, last + AROUND, first, last,
                                              {str(e.get("event_id")) for e in evidence})
            picture["count"] = len(around)
            picture["capped"] = len(around) >= MAX_AROUND_EVENTS
        return {"finding": view, "picture": picture,
                "evidence": [(e, by_event.get(str(e.get("event_id")), [])) for e in shown_evidence],
                "evidence_total": len(evidence), "evidence_page": evidence_page,
                "evidence_pages": max(1, -(-len(evidence) // EVIDENCE_PER_PAGE)),
                "history": analyst_actions(db, finding_id), "review": case_review(db)}

    def span_of(first: datetime | None, last: datetime | None) -> tuple[datetime, datetime] | None:
        """The time filter that finds a finding's evidence events (a second of slack each side, for the
        fractions its whole-second times drop)."""
        if first is None or last is None:
            return None
        return first - timedelta(seconds=1), last + timedelta(seconds=1)

    def view_times(document: dict) -> tuple[datetime | None, datetime | None]:
        try:
            first = parse_utc_param("first_seen", document.get("first_seen"))
            last = parse_utc_param("last_seen", document.get("last_seen")) or first
        except BadRequest:
            return None, None
        return first, last

    @app.get("/findings/{finding_id}")
    def finding(finding_id: str, request: Request) -> Response:
        number = _page_number(request.query_params.get("evidence_page"))
        with case.reading() as db:
            context = finding_context(db, finding_id, number)
        return page("finding.html", message=None, **context)

    @app.get("/findings/{finding_id}/allowlist")
    def allowlist(finding_id: str) -> Response:
        with case.reading() as db:
            browser = CaseBrowser(db)
            document = browser.finding_document(finding_id)
            if document is None:
                raise HTTPException(404, "no such finding in this case")
            event_ids = [str(e.get("event_id")) for e in document.get("evidence") or [] if isinstance(e, dict)]
            span = span_of(*view_times(document)) or (datetime.min, datetime.max)
            apps = browser.apps_of_events(event_ids, *span)
        actions = [str(e.get("action")) for e in document.get("evidence") or []
                   if isinstance(e, dict) and e.get("action")]
        return page("allowlist.html", finding=finding_view(document, 0),
                    suggestions=suggest_allowlist(document, actions, apps))

    def record(action: str, finding_id: str | None, value: str | None, note: str, name: str) -> str | None:
        """Record an analyst action; the message to show when it cannot be recorded."""
        if finding_id is not None:
            with case.reading() as db:
                if CaseBrowser(db).finding_document(finding_id) is None:
                    raise HTTPException(404, "no such finding in this case")
        try:
            with case.writing() as db:
                record_action(case.folder, db, action, finding_id, value, note, name)
        except ReviewError as exc:
            return str(exc)
        return None

    @app.post("/findings/{finding_id}/disposition", dependencies=[Depends(check_csrf)])
    def set_disposition(finding_id: str, disposition: str = Form(""), note: str = Form(""),
                        analyst_name: str = Form("")) -> Response:
        problem = record(DISPOSITION, finding_id, disposition, note, analyst_name)
        return after_action(finding_id, problem)

    @app.post("/findings/{finding_id}/verification", dependencies=[Depends(check_csrf)])
    def set_verification(finding_id: str, answer: str = Form(""), note: str = Form(""),
                         analyst_name: str = Form("")) -> Response:
        problem = record(VERIFICATION_ANSWER, finding_id, answer, note, analyst_name)
        return after_action(finding_id, problem)

    def after_action(finding_id: str, problem: str | None) -> Response:
        if problem is None:
            return RedirectResponse(f"/findings/{quote(finding_id, safe='')}#review", status_code=303)
        with case.reading() as db:
            context = finding_context(db, finding_id, 1)
        return page("finding.html", status=400, message=problem, **context)

    # ------------------------------------------------------------ timeline and events

    @app.get("/timeline")
    def timeline(request: Request) -> Response:
        q = request.query_params
        since, until = parse_utc_param("since", q.get("since")), parse_utc_param("until", q.get("until"))
        text = (q.get("q") or "").strip()[:500]
        number = _page_number(q.get("page"))
        with case.reading() as db:
            browser = CaseBrowser(db)
            first, last = browser.case_period()
            start, end = since or first, until or last
            picture = None
            if start is not None and end is not None:
                if end <= start:
                    end = start + timedelta(minutes=1)
                picture = pictures.case_lanes(browser.lanes(start, end, LANE_BUCKETS),
                                              browser.finding_marks(start, end))
            events = browser.search_events(text or None, since, until, EVENTS_PER_PAGE + 1,
                                           (number - 1) * EVENTS_PER_PAGE)
        shown = {k: v for k, v in (("since", q.get("since")), ("until", q.get("until")), ("q", text)) if v}

        def link(**change) -> str:
            return "/timeline?" + urlencode({k: v for k, v in {**shown, **change}.items() if v})

        return page("timeline.html", picture=picture, events=events[:EVENTS_PER_PAGE],
                    more=len(events) > EVENTS_PER_PAGE, number=number, shown=shown, link=link,
                    period=(first, last), start=start, end=end)

    @app.get("/events/{event_id:path}")
    def event(event_id: str, request: Request) -> Response:
        """One event's raw records; ``at`` (its time, which every link here carries) narrows the search on a
        big case, and is only a hint: an event not found there is looked for in the whole case."""
        at = parse_utc_param("at", request.query_params.get("at"))
        with case.reading() as db:
            records = raw_records_of(db, case.folder, [event_id], span_of(at, at)) if at is not None else []
            if not records:
                records = raw_records_of(db, case.folder, [event_id])
            findings_of = CaseBrowser(db).findings_of_event(event_id)
        if not records:
            raise HTTPException(404, "no such event in this case")
        return page("event.html", event_id=event_id, records=records, findings_of=findings_of)

    # ------------------------------------------------------------ evidence and review

    def evidence_context() -> dict:
        try:
            manifest = read_manifest(case.folder)
            problem = None
        except (ValueError, OSError) as exc:
            manifest, problem = {"files": []}, str(exc)
        chain = custody.verify_chain(case.folder)
        return {"manifest": [f for f in manifest.get("files") or [] if isinstance(f, dict)],
                "manifest_problem": problem, "chain": chain}

    @app.get("/evidence")
    def evidence() -> Response:
        return page("evidence.html", verification=None, **evidence_context())

    @app.post("/evidence/verify", dependencies=[Depends(check_csrf)])
    def verify() -> Response:
        with case.lock:
            result = verify_case(case.folder)
            custody.record(case.folder, "verify", {"intact": result.intact, "problems": result.problems,
                                                   "files_checked": result.files_checked, "head": result.head})
        return page("evidence.html", verification=result, **evidence_context())

    @app.get("/review")
    def review() -> Response:
        with case.reading() as db:
            actions = analyst_actions(db)
            state = case_review(db)
            counts = CaseBrowser(db).findings_page(FindingFilter(), limit=0).total
        return page("review.html", actions=actions, state=state, finding_total=counts, message=None)

    @app.post("/review/signoff", dependencies=[Depends(check_csrf)])
    def signoff(analyst_name: str = Form(""), note: str = Form("")) -> Response:
        problem = record(SIGNOFF, None, "signed", note, analyst_name)
        if problem is None:
            return RedirectResponse("/review", status_code=303)
        with case.reading() as db:
            actions, state = analyst_actions(db), case_review(db)
            counts = CaseBrowser(db).findings_page(FindingFilter(), limit=0).total
        return page("review.html", status=400, actions=actions, state=state, finding_total=counts, message=problem)

    return app
