"""The viewer's web application: GET routes over one output folder, rendered with Jinja
templates (autoescaped: record text is shown as text, never as markup).

A request names a task by its name (``?t=core/simple/x``), looked up among the task folders
found under the output folder, and a store by one of a fixed list of names, so no request
parameter ever becomes a path; store files are still resolved and checked to stay inside the
output folder (a symlink pointing out reads as absent).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fms_dgt.view.records import FILTERED, PAGE_SIZES, TaskRecords, chat_of, inner_record, user_fields
from fms_dgt.view.runs import RECORD_STORES, find_tasks, task_status
from fms_dgt.view.security import SecurityHeaders, TokenGuard, contained
from fms_dgt.view.store_index import IndexCache

STORE_LABELS = {
    "data": "accepted",
    "final_data": "final",
    "formatted_data": "formatted",
    "rejected": "rejected",
    "failed": "failed",
}
FILTER_LABELS = {"rejected": ("block", "reason"), "failed": ("stage", "error")}
STATIC = ("viewer.css", "viewer.js")


def plotly_js() -> Path:
    """plotly.js as shipped inside the plotly package (served locally, never from a CDN)."""
    try:
        from fms_dgt.view.charts import plotly_js_path

        return plotly_js_path()
    except ImportError:
        import plotly

        return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Viewer:
    """The routes' shared state: the output folder, the store indexes and memos."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.cache = IndexCache()
        self.memo: dict[Any, Any] = {}
        pkg = resources.files("fms_dgt.view")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(pkg / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals.update(
            url=_url,
            labels=STORE_LABELS,
            pretty=_pretty,
            preview=_preview,
            chat_of=chat_of,
            fields_of=user_fields,
        )
        self.static_dir = Path(str(pkg / "static"))

    # ---- helpers ------------------------------------------------------------------
    def render(self, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**ctx)
        return HTMLResponse(html, status_code=status_code)

    def task(self, request: Request) -> tuple[str, TaskRecords]:
        name = request.query_params.get("t", "")
        tasks = find_tasks(self.root)
        if name not in tasks:
            raise HTTPException(404, "no such task")
        return name, TaskRecords(self.root, tasks[name], self.cache, self.memo)

    @staticmethod
    def store(request: Request, present: list[str]) -> str:
        store = request.query_params.get("store", "data")
        if store not in present:
            raise HTTPException(404, "no such store")
        return store

    def present(self, records: TaskRecords) -> list[str]:
        return [s for s in RECORD_STORES if records.index(s) is not None]

    # ---- routes -------------------------------------------------------------------
    async def overview(self, request: Request) -> Response:
        tasks = [task_status(self.root, n, d, self.cache) for n, d in find_tasks(self.root).items()]
        return self.render("overview.html", root=str(self.root), tasks=tasks, stores=RECORD_STORES)

    async def status_api(self, request: Request) -> Response:
        tasks = [task_status(self.root, n, d, self.cache).as_json() for n, d in find_tasks(self.root).items()]
        return JSONResponse({"tasks": tasks})

    async def task_page(self, request: Request) -> Response:
        name, records = self.task(request)
        tasks = find_tasks(self.root)
        status = task_status(self.root, name, tasks[name], self.cache)
        facets = {s: lab.facets() for s in FILTERED if (lab := records.labels(s)) is not None}
        card = records.card()
        return self.render(
            "task.html",
            name=name,
            status=status,
            present=self.present(records),
            facets=facets,
            filter_labels=FILTER_LABELS,
            card=card,
            seeds=len(records.seeds()),
        )

    async def records_page(self, request: Request) -> Response:
        name, records = self.task(request)
        present = self.present(records)
        store = self.store(request, present)
        p = request.query_params
        size = min(max(1, _int(p.get("size"), 25)), max(PAGE_SIZES))
        query = p.get("q", "")[:200]
        first, second = p.get("f1") or None, p.get("f2") or None
        page = records.page(store, _int(p.get("page"), 1), size, query, first, second)
        labels = records.labels(store)
        facets = labels.facets() if labels else {}
        return self.render(
            "records.html",
            name=name,
            store=store,
            present=present,
            page=page,
            query=query,
            first=first,
            second=second,
            facets=facets,
            second_options=sorted({r for c in facets.values() for r in c}),
            filter_labels=FILTER_LABELS.get(store),
            sizes=PAGE_SIZES,
            inner=lambda row: inner_record(store, row),
            fields=user_fields,
        )

    async def record_page(self, request: Request) -> Response:
        name, records = self.task(request)
        store = self.store(request, self.present(records))
        pos = _int(request.query_params.get("i"), -1)
        row = records.record(store, pos)
        if row is None:
            raise HTTPException(404, "no such record")
        record = inner_record(store, row)
        lineage = record.get("lineage") if isinstance(record, dict) else None
        icl_ids = [str(i) for i in (lineage or {}).get("icl_ids") or []] if isinstance(lineage, dict) else []
        wrapper = {k: v for k, v in row.items() if k != "record"} if record is not row else None
        return self.render(
            "record.html",
            name=name,
            store=store,
            pos=pos,
            total=len(records.index(store) or []),
            record=record,
            fields=user_fields(record),
            lineage=lineage,
            wrapper=wrapper,
            icl=records.resolve(icl_ids),
        )

    async def compare_page(self, request: Request) -> Response:
        name, records = self.task(request)
        present = self.present(records)
        store = "final_data" if "final_data" in present else "data"
        seeds = records.seeds()
        page = (
            records.page(store, _int(request.query_params.get("page"), 1), 10) if store in present else None
        )
        return self.render("compare.html", name=name, seeds=seeds, page=page, store=store, fields=user_fields)

    async def charts_page(self, request: Request) -> Response:
        name, records = self.task(request)
        charts: list[Any] = []
        try:
            from fms_dgt.view.charts import task_charts
        except ImportError:
            missing = True
        else:
            # the charts read the task folder's stores themselves: only when none of its
            # entries leads outside the output folder
            missing = False
            if all(contained(self.root, p) is not None for p in records.task_dir.iterdir()):
                # charts read whole stores: drawn again only when a store has grown
                sizes = tuple((s, len(ix)) for s in RECORD_STORES if (ix := records.index(s)) is not None)
                key = ("charts", records.task_dir)
                cached = self.memo.get(key)
                if cached is None or cached[0] != sizes:
                    cached = self.memo[key] = (sizes, task_charts(records.task_dir))
                charts = cached[1]
        figures = [(c.title, _json_script(c.figure)) for c in charts]
        return self.render("charts.html", name=name, figures=figures, missing=missing)

    async def static(self, request: Request) -> Response:
        file = request.path_params["file"]
        if file == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="text/javascript")
        if file not in STATIC:
            raise HTTPException(404, "no such asset")
        media = "text/css" if file.endswith(".css") else "text/javascript"
        return FileResponse(self.static_dir / file, media_type=media)


def create_app(root: Path, token: str) -> Callable[..., Any]:
    """The ASGI application serving ``root``; every request needs ``token``."""
    viewer = Viewer(root)
    get = ["GET"]
    routes = [
        Route("/", viewer.overview, methods=get),
        Route("/api/status", viewer.status_api, methods=get),
        Route("/task", viewer.task_page, methods=get),
        Route("/records", viewer.records_page, methods=get),
        Route("/record", viewer.record_page, methods=get),
        Route("/compare", viewer.compare_page, methods=get),
        Route("/charts", viewer.charts_page, methods=get),
        Route("/static/{file}", viewer.static, methods=get),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return viewer.render("error.html", status_code=status, status=status, detail=detail)

    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    return SecurityHeaders(TokenGuard(app, token))


def _url(path: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(clean) if clean else "")


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _preview(record: Any, limit: int = 240) -> str:
    """A line of a record's text for the record lists."""
    fields = user_fields(record)
    chat = chat_of(record)
    if chat:
        text = " | ".join(f"{m['role']}: {m['content']}" for m in chat)
    else:
        text = " | ".join(f"{k}: {v if isinstance(v, str) else _pretty(v)}" for k, v in fields.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_script(value: Any) -> str:
    """JSON safe inside a ``<script type="application/json">`` block (no ``</script>``)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
