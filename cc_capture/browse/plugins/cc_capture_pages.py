"""The Datasette plugin of `ccd browse` (loaded with `--plugins-dir`, so only inside the Datasette
process): the trace and models pages, links from every `trace_id` to its trace page, readable
times, the `fts_query` SQL function, and `PRAGMA query_only` on every connection.

The pages read through `cc_capture.store` and `cc_capture.browse.view`; this file only wires
them into Datasette.
"""

from __future__ import annotations

from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup, escape

from cc_capture import reads, records, store
from cc_capture.browse import models as models_mod
from cc_capture.browse.metadata import MODELS_PAGE, TRACE_PAGE
from cc_capture.browse.view import markdown, trace_view


def _database(datasette):
    """The store (the one database `ccd browse` serves)."""
    return datasette.get_database()


@hookimpl
def prepare_connection(conn, database):
    if database.startswith("_"):  # Datasette's own in-memory databases (_internal, _memory)
        return
    conn.execute("PRAGMA query_only = 1")  # whatever Datasette is asked, this connection cannot write
    conn.create_function("fts_query", 1, lambda text: store.fts_query(text or ""), deterministic=True)


def _trace_link(trace_id: str, label: str) -> Markup:
    return Markup(f'<a href="{TRACE_PAGE}{quote(trace_id, safe="")}">{escape(label)}</a>')


@hookimpl
def render_cell(row, value, column, table):
    if column == "trace_id" and isinstance(value, str) and value:
        return _trace_link(value, value)
    if table == "traces" and column == "prompt" and isinstance(value, str):  # the id cell links to the raw row
        return _trace_link(row["trace_id"], value if len(value) <= 300 else value[:300] + "…")
    if column.endswith("_at") and isinstance(value, float):
        return store.iso(value)
    return None


@hookimpl
def menu_links(datasette):
    db = _database(datasette).name
    return [{"href": f"/{db}/recent_traces", "label": "Recent traces"},
            {"href": MODELS_PAGE, "label": "Models"}]


async def trace_page(datasette, request):
    trace_id = request.url_vars["trace_id"]
    db = _database(datasette)
    trace = await db.execute_fn(lambda conn: reads.trace(store.Database(conn), trace_id))
    if trace is None:
        raise NotFound(f"No trace {trace_id}: the recent traces list has the ids")
    context = {"view": trace_view(records.jsonable(trace)), "database": db.name, "markdown": markdown}
    return Response.html(await datasette.render_template("cc_trace.html", context, request=request))


async def models_page(datasette, request):
    db = _database(datasette)
    registry = await db.execute_fn(lambda conn: models_mod.registry(store.Database(conn)))
    context = {"registry": registry, "chart": models_mod.chart_svg(registry), "database": db.name}
    return Response.html(await datasette.render_template("cc_models.html", context, request=request))


@hookimpl
def register_routes():
    return [(rf"^{TRACE_PAGE}(?P<trace_id>[^/]+)$", trace_page), (rf"^{MODELS_PAGE}$", models_page)]
