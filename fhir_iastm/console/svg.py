"""Tiny SVG element writers (strings, escaped): the charts' only way to make markup."""

from __future__ import annotations

from html import escape


def fmt(value: float) -> str:
    """A coordinate or number, without a trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def attrs(**values: object) -> str:
    """``key="value"`` pairs; ``_`` in a key becomes ``-``, a trailing ``_`` is dropped."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        shown = fmt(value) if isinstance(value, float) else str(value)
        parts.append(f'{name}="{escape(shown)}"')
    return " ".join(parts)


def el(tag: str, body: str = "", **values: object) -> str:
    """One element; ``body`` is markup already (escape text with :func:`text`)."""
    head = f"<{tag} {attrs(**values)}".rstrip()
    return f"{head}>{body}</{tag}>" if body else f"{head}/>"


def text(x: float, y: float, words: str, **values: object) -> str:
    """A ``<text>`` element with escaped words."""
    return el("text", escape(words), x=float(x), y=float(y), **values)


def svg(title: str, desc: str, width: int, height: int, body: list[str], **values: object
        ) -> str:
    """The chart: ``role="img"``, its ``<title>`` and ``<desc>`` first, referenced by
    ``aria-labelledby``."""
    ident = values.pop("id", "chart")
    head = el("title", escape(title), id=f"{ident}-title") + \
        el("desc", escape(desc), id=f"{ident}-desc")
    return el("svg", head + "".join(body), xmlns="http://www.w3.org/2000/svg", role="img",
              id=ident, viewBox=f"0 0 {width} {height}", width=width, height=height,
              aria_labelledby=f"{ident}-title {ident}-desc", **values)


__all__ = ["attrs", "el", "fmt", "svg", "text"]
