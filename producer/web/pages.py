"""Server-rendered pages (Jinja2) shared by the operators' dashboard and the admins' pages:
the template environment, its filters, and the headers every page is sent with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

templates = Environment(
    loader=PackageLoader("producer.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def duration(seconds: float | None) -> str:
    """``95`` → ``1 m 35 s``; None → a dash (no estimate)."""
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} m"
    return f"{minutes} m {secs} s" if minutes else f"{secs} s"


def when(iso: str | datetime | None, timezone: str = "UTC") -> str:
    """An ISO time as ``2026-11-27 17:35 UTC`` (or a dash), in ``timezone``."""
    if iso is None:
        return "–"
    moment = iso if isinstance(iso, datetime) else datetime.fromisoformat(iso)
    local = moment.astimezone(UTC if timezone == "UTC" else ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M ") + ("UTC" if timezone == "UTC" else local.strftime("%Z"))


def count(number: int, word: str, plural: str | None = None) -> str:
    """``count(1, "row")`` → ``1 row``; ``count(2, "person", "people")`` → ``2 people``."""
    return f"{number:,} " + (word if number == 1 else plural or word + "s")


templates.filters["duration"] = duration
templates.filters["count"] = count
templates.filters["thousands"] = "{:,}".format
templates.filters["when"] = when

# No inline scripts, no framing (the action buttons cannot be clickjacked), no
# caching of pages that carry a CSRF token. Inline styles: the bars' widths.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name`` as a page."""
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
