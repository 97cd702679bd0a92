"""Rendering the report pages from the jinja2 templates in ``reports/templates/``.

Every page is a template with autoescaping: the Python side hands over plain data (strings,
numbers, lists), never markup, so text that comes from a guest (command output, journal
lines, locale and file names) cannot add markup or script to a page. Links are made
relative and percent-encoded (a colon too, so no ``javascript:`` or other scheme can appear).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from distrogate import paths

_WEB_URL = re.compile(r"^https?://[^\s\"'<>]+$")


def templates_dir() -> Path:
    """Where the report templates live (``reports/templates/`` of the checkout)."""
    return paths.repo_root() / "reports" / "templates"


@cache
def environment() -> jinja2.Environment:
    """The template environment: autoescaping for every template, undefined names are errors."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render(template: str, **context: Any) -> str:
    """The page ``template`` rendered with ``context`` (plain data, escaped on output)."""
    return environment().get_template(template).render(**context)


def render_fragment(source: str, **context: Any) -> str:
    """A template given as a string (it may import the macros), rendered like a page."""
    return environment().from_string(source).render(**context)


def href(path: str) -> str:
    """A relative, percent-encoded link target for a file path (no scheme can survive)."""
    return quote(path, safe="/#@!$&'()*+,;=-._~")


def web_link(url: str) -> str | None:
    """``url`` if it is a plain http(s) address to link to, else None (shown as text)."""
    return url if _WEB_URL.match(url) else None


def data_block(data: Mapping[str, Any]) -> dict[str, Any]:
    """A finding's data for the page: a key/value table of scalars, else indented JSON."""
    if all(isinstance(v, str | int | float | bool) or v is None for v in data.values()):
        return {"table": [(str(k), str(v)) for k, v in data.items()], "json": "",
                "size": len(data)}
    return {"table": None, "json": json.dumps(data, indent=2, sort_keys=True, default=str),
            "size": len(data)}


def number(value: float) -> str:
    """A compact rendering of a measurement value."""
    return f"{value:.6g}"
