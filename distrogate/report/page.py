"""Shared HTML building blocks for the reports: escaping, tables, the page shell and its CSS.

Pages are self-contained: inline CSS, no scripts, no external resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232b;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:2rem 0 .6rem;
border-bottom:1px solid #d6dae0;padding-bottom:.2rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;background:#fff;margin:.3rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #d6dae0;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#fff;border:1px solid #d6dae0;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
.banner{border-radius:8px;padding:1rem 1.3rem;color:#fff;margin-bottom:1rem}
.banner h1{font-size:2rem;letter-spacing:.04em;text-transform:uppercase}
.banner ul{margin:.5rem 0 0;padding-left:1.2rem}
.promote{background:#1f7a3a}.reject{background:#b3261e}.inconclusive{background:#b36b00}
.pill{display:inline-block;border-radius:4px;padding:0 .4rem;font-size:.82rem;font-weight:600;
color:#fff}
.o-passed{background:#1f7a3a}.o-failed{background:#b3261e}.o-error{background:#7b2d8e}
.o-skipped{background:#6b7280}.o-waived{background:#2b6cb0}
.o-also-fails-on-baseline{background:#8a6d1f}
.test{background:#fff;border:1px solid #d6dae0;border-radius:6px;padding:.6rem .9rem;
margin:.6rem 0}
.muted{color:#5b6470}.scroll{overflow-x:auto}footer{margin-top:2.5rem;font-size:.85rem;
color:#5b6470}
.up{color:#b3261e}.down{color:#1f7a3a}
"""


def esc(value: object) -> str:
    """HTML-escape any value's text (quotes too, so it is safe in attributes)."""
    return escape(str(value), quote=True)


def href(path: str) -> str:
    """An escaped, URL-quoted relative link target for a file path."""
    return esc(quote(path, safe="/#:@!$&'()*+,;=-._~"))


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body``."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def table(
    headers: Iterable[str], rows: Iterable[Iterable[str]], numeric: Iterable[int] = ()
) -> str:
    """A table; headers are escaped here, cells must already be HTML."""
    nums = set(numeric)
    head = "".join(
        f"<th class=\"num\">{esc(h)}</th>" if i in nums else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "\n".join(
        "<tr>" + "".join(
            f"<td class=\"num\">{c}</td>" if i in nums else f"<td>{c}</td>"
            for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def pill(outcome: str) -> str:
    """A coloured outcome label."""
    return f"<span class=\"pill o-{esc(outcome)}\">{esc(outcome)}</span>"


def data_block(data: Mapping[str, Any]) -> str:
    """A dict of scalars as a key/value table, anything else as preformatted JSON."""
    if all(isinstance(v, str | int | float | bool) or v is None for v in data.values()):
        return table(["key", "value"], [[esc(k), esc(v)] for k, v in data.items()])
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    return (f"<details><summary>data ({len(data)} keys)</summary><pre>{esc(text)}</pre>"
            f"</details>")


def number(value: float) -> str:
    """A compact rendering of a measurement value."""
    return f"{value:.6g}"
