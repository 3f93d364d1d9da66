"""A search's shape: the query with each value it compares replaced by a named parameter.

Two searches that differ only in their values (``Patient?identifier=a|1`` and ``…=b|2``) have the
same shape, so the same SQL. :func:`template` gives the shape (a ``SearchQuery`` whose values are
:class:`Slot` names) and the values by name; ``fhir_search`` builds its statements from either a
query or a shape (:func:`bound` turns a slot into a ``bindparam``), so a shape's SQL is
built and compiled once and later searches of that shape go straight to the driver
(``driver.select_rows``). What is structure stays in the shape: resource types, parameter
names, prefixes, modifiers, how many values a comma list has, whether a system is given.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from sqlalchemy import bindparam

from fhir_iastm.storage.fhir_types import (
    Chain,
    Condition,
    DateMatch,
    Match,
    RefMatch,
    SearchQuery,
    StringMatch,
    TokenMatch,
)


class Slot(str):
    """The name of a value's bind parameter in a shape (a str, so shapes keep their types)."""

    __slots__ = ()


def bound(value: Any) -> Any:
    """A slot as its ``bindparam``; any other value as it is."""
    return bindparam(str(value)) if isinstance(value, Slot) else value


def like_pattern(m: StringMatch) -> str:
    """The LIKE pattern of a starts-with or ``:contains`` match (``\\`` escapes)."""
    text = m.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ("%" if m.mode == "contains" else "") + text + "%"


def string_value(m: StringMatch) -> str:
    """What a string match compares: its text (``:exact``) or its LIKE pattern (a slot as is)."""
    if isinstance(m.text, Slot) or m.mode == "exact":
        return m.text
    return like_pattern(m)


class _Slots:
    """Hands out slot names and keeps their values."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> Any:
        name = Slot(f"slot{len(self.values)}")
        self.values[name] = value
        return name

    def named(self, name: str, value: Any) -> Any:
        self.values[Slot(name)] = value
        return Slot(name)

    def opt(self, value: str | None) -> str | None:
        return None if value is None else self(value)


def _match(m: Match, slot: _Slots) -> Match:
    if isinstance(m, TokenMatch):
        return TokenMatch(slot.opt(m.system), slot.opt(m.code))
    if isinstance(m, StringMatch):
        return StringMatch(slot(string_value(m)), m.mode)
    if isinstance(m, DateMatch):
        return DateMatch(m.prefix, slot(m.low), slot(m.high))
    if isinstance(m, RefMatch):
        return RefMatch(slot.opt(m.target_type), slot(m.target_id))
    return Chain(m.target_type, _condition(m.condition, slot))


def _condition(cond: Condition, slot: _Slots) -> Condition:
    return replace(cond, matches=tuple(_match(m, slot) for m in cond.matches))


def template(q: SearchQuery) -> tuple[SearchQuery, dict[str, Any]]:
    """The shape of a query and its values by slot name."""
    slot = _Slots()
    conditions = tuple(_condition(c, slot) for c in q.conditions)
    after = None
    if q.after is not None:  # a missing sort value stays in the shape: it compares as NULL
        key = None if q.after[0] is None else slot.named("after_key", q.after[0])
        after = cast(Any, (key, slot.named("after_pk", q.after[1])))
    return replace(q, conditions=conditions, after=after), slot.values


def slots(values: list[Any], prefix: str, into: dict[str, Any]) -> list[Any]:
    """Slots ``<prefix>0…`` for a list of values (added to ``into``)."""
    names = [Slot(f"{prefix}{i}") for i in range(len(values))]
    into.update(zip(names, values, strict=True))
    return names


__all__ = ["Slot", "bound", "like_pattern", "slots", "string_value", "template"]
