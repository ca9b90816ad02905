"""The desk's HTML: Jinja2 templates (autoescaped), its own stylesheet and script served
from the package (nothing from a CDN), and no inline script or style, so the strict
Content-Security-Policy every desk page carries (api/page_policy.py) lets them work."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.money import Money

_HERE = Path(__file__).parent
# The Content-Security-Policy comes from api/page_policy.py (DESK_POLICY), as for every
# page the API serves; the desk's pages have no inline script or style to allow.
PAGE_HEADERS = {"Referrer-Policy": "same-origin"}


class Asset(StrEnum):
    """The desk's static files, by name: nothing else under /desk/static is served."""

    STYLESHEET = "desk.css"
    SCRIPT = "desk.js"
    # Asked for by every browser: served here, not answered 401 by the API.
    ICON = "favicon.svg"


_MEDIA_TYPES = {
    Asset.STYLESHEET: "text/css",
    Asset.SCRIPT: "text/javascript",
    Asset.ICON: "image/svg+xml",
}


def asset(name: Asset) -> FileResponse:
    return FileResponse(_HERE / "static" / name.value, media_type=_MEDIA_TYPES[name])


def money(amount: Money | None) -> str:
    return "—" if amount is None else str(amount)


def moment(at: datetime | None) -> str:
    return "—" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"


def words(value: str | None) -> str:
    """An enum's value as words: `under_review` → `under review`."""
    return "" if value is None else value.replace("_", " ")


_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(money=money, moment=moment, words=words)


def page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A desk page; `request.state.desk_session` (when signed in) gives the person, the
    role they act in and the form token to every template."""
    session = getattr(request.state, "desk_session", None)
    body = _templates.get_template(template).render(request=request, session=session, **context)
    return HTMLResponse(body, status_code=status_code, headers=PAGE_HEADERS)
