"""``/filestream/dashboard/``: one static page that renders ``/filestream/summary/`` every two seconds.

Plain HTML and JavaScript in ``dashboard.html``, no build step and nothing fetched from
elsewhere, so it works on a worker without internet access.
"""

from __future__ import annotations

from pathlib import Path

from web.access import guarded_page

PAGE = (Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8")


@guarded_page("/filestream/dashboard/")
async def dashboard(web, request):
    return web.html(PAGE)
