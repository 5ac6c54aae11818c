"""Who may see the views: with ``FILESTREAM_WEB_TOKEN`` set, only requests that carry it.

The token comes as ``Authorization: Bearer <token>`` or, for a browser opening the
dashboard, as ``?token=<token>`` (the page then sends it as a header itself).  The
health view (``web/health.py``) stays open: load balancers and probes carry no token.
With ``FILESTREAM_VIEWS_ENABLED=false`` none of these views is served at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faust.web import View

from app import app, settings
from web.paging import QueryError
from web.tokens import authorized


class GuardedView(View):
    """A view that answers 401 unless the request carries the configured token, and 400 for a query it cannot use."""

    async def dispatch(self, request: Any) -> Any:
        if not authorized(settings.web_token, request.headers, request.query):
            return self.json(
                {"error": "this view needs the token of FILESTREAM_WEB_TOKEN (Authorization: Bearer <token>)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="filestream"'},
            )
        try:
            return await super().dispatch(request)
        except QueryError as exc:
            return self.json(exc.body(), status=400)


def guarded_page(path: str) -> Callable[[Callable[..., Any]], Any]:
    """``@app.page`` for every filestream view but health; registers nothing when the views are off."""
    if not settings.views_enabled:
        return lambda view: view
    return app.page(path, base=GuardedView)
