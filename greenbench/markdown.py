"""Text for Markdown (a pull-request comment, a doc): every output that writes Markdown escapes
what it did not write itself (a model's name, a path, a note) with ``escape``."""

from __future__ import annotations

import html

__all__ = ["escape"]

# Backslash escapes of the characters that would start code, emphasis or a link, or end a cell.
_MARKDOWN = ("\\", "|", "`", "*", "[", "]")


def escape(text: str) -> str:
    """``text`` for a Markdown table cell or line: HTML escaped (a name such as ``<img src=x
    onerror=...>`` is shown, never run), Markdown's own specials backslash-escaped, on one line."""
    text = html.escape(text, quote=False)
    for ch in _MARKDOWN:
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.splitlines())
