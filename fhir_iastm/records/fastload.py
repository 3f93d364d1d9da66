"""A compiled loader for the common valid record: ``RECORD_SCHEMA.load`` without marshmallow's
machinery, or ``None`` when it is not sure (docs/validation.md#fast-load).

It is compiled from the marshmallow schemas themselves (``records.schemas``) and runs the same
field checks (``Text``, ``Int``, ``Number``, ``Bool`` ``_deserialize``), the same schema
validators and the same ``post_load``; what it does not do itself, it refuses. Any doubt — a
missing required field, a null where none is allowed, an unknown key, a value a check refuses, an
object that is not a ``dict`` — answers ``None``, and :func:`records.check_record` then runs
marshmallow, so every error and message stays exactly marshmallow's. On data it accepts it
returns the record marshmallow would load (tests/records/test_fastload.py: every example and
generated records, compared by ``repr``, which tells ``1`` from ``1.0`` and ``True``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields

from fhir_iastm.records.fields import Array, Bool, Code, Int, Number, Text

Loader = Callable[[Any], Any]


class UnsureError(Exception):
    """The fast loader cannot vouch for this value: marshmallow decides."""


_MISSING = object()


def _plain_field(field: fields.Field) -> None:
    """Refuse to compile a field using marshmallow features the fast loader does not run."""
    if field.data_key is not None or field.attribute is not None or field.validators \
            or field.pre_load or field.post_load or field.load_only or field.dump_only:
        raise TypeError(f"the fast loader cannot compile {field!r}")


def _code(field: Code) -> Loader:
    # the allowed values that the field's own checks accept (all of them, in practice)
    accepted = set()
    for value in field.allowed:
        with contextlib.suppress(ValidationError):
            accepted.add(field._deserialize(value, None, None))
    ok = frozenset(accepted)

    def load(value: Any) -> Any:
        if type(value) is str and value in ok:
            return value
        raise UnsureError

    return load


def _checked(field: fields.Field) -> Loader:
    check = field._deserialize

    def load(value: Any) -> Any:
        try:
            return check(value, None, None)
        except ValidationError:
            raise UnsureError from None

    return load


def _bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    raise UnsureError


def _array(field: Array) -> Loader:
    inner = compile_field(field.inner)
    low, high = field.min_items, field.max_items

    def load(value: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise UnsureError
        if not low <= len(value) <= high:
            raise UnsureError
        out = []
        for item in value:
            if item is None:  # marshmallow's null handling decides
                raise UnsureError
            out.append(inner(item))
        return out

    return load


def compile_field(field: fields.Field) -> Loader:
    """A loader of one non-null value of ``field``: its loaded value, or :class:`UnsureError`."""
    _plain_field(field)
    if isinstance(field, Code):
        return _code(field)
    if isinstance(field, Bool):
        return _bool
    if isinstance(field, Text | Int | Number):
        return _checked(field)
    if isinstance(field, Array):
        return _array(field)
    if isinstance(field, fields.Nested) and field.unknown is None and not field.many:
        return compile_schema(field.schema)
    raise TypeError(f"the fast loader cannot compile {field!r}")


def _schema_parts(schema: Schema) -> tuple[list[Callable[..., Any]], type]:
    """The schema's ``validates_schema`` methods and its post_load target; refuses any other
    hook or option."""
    hooks = dict(schema._hooks)
    validators = []
    for name, pass_collection, options in hooks.pop("validates_schema", []):
        if pass_collection or options.get("pass_original") \
                or not options.get("skip_on_field_errors"):
            raise TypeError(f"the fast loader cannot run {type(schema).__name__}.{name}")
        validators.append(getattr(schema, name))
    if hooks.pop("post_load", None) != [("_make", False, {"pass_original": False})] or any(
            hooks.values()) or schema.opts.unknown != "raise" or schema.many or schema.partial \
            or schema.load_fields != schema.fields:
        raise TypeError(f"the fast loader cannot compile {type(schema).__name__}")
    return validators, schema.target  # type: ignore[attr-defined]


def compile_schema(schema: Schema) -> Loader:
    """A loader of one object of ``schema`` (``_Base`` of ``records.schemas``): the dataclass
    its ``post_load`` builds, or :class:`UnsureError`."""
    validators, target = _schema_parts(schema)
    plan = [(name, compile_field(f), f.required, f.allow_none) for name, f in schema.fields.items()]
    names = frozenset(schema.fields)

    def load(data: Any) -> Any:
        if type(data) is not dict or not names.issuperset(data):
            raise UnsureError
        loaded: dict[str, Any] = {}
        for name, field_load, required, allow_none in plan:
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    raise UnsureError
            elif value is None:
                if not allow_none:
                    raise UnsureError
                loaded[name] = None
            else:
                loaded[name] = field_load(value)
        for validate in validators:
            try:
                validate(loaded)
            except ValidationError:
                raise UnsureError from None
        # ``_Base._make``: lists become tuples, an explicit null is the dataclass default
        return target(**{k: tuple(v) if type(v) is list else v
                         for k, v in loaded.items() if v is not None})

    return load


def fast_loader(schema: Schema) -> Callable[[Any], Any | None]:
    """``schema.load(data)`` for data it is sure of, else ``None`` (marshmallow then decides)."""
    load = compile_schema(schema)

    def fast(data: Any) -> Any | None:
        try:
            return load(data)
        except UnsureError:
            return None

    return fast


__all__ = ["UnsureError", "compile_field", "compile_schema", "fast_loader"]
