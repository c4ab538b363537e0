"""SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2): parsed, then evaluated on resources.

A filter is parsed into a small tree (:class:`Compare`, :class:`Present`,
:class:`And`, :class:`Or`, :class:`Not`, :class:`ValuePath`) and evaluated on
a resource as the service answers it (its JSON dict), so what a filter
matches is what a client reads back: no SQL is written from a filter. The
indexed look-ups the identity providers start with (``userName eq``,
``externalId eq``, ``id eq``) are picked out by :func:`equality_keys` and
answered through named statements; the tree is still evaluated on what they find.

Hostile input is bounded: a filter over :data:`MAX_FILTER_CHARS` characters,
nested deeper than :data:`MAX_DEPTH`, or not in the grammar raises
:class:`FilterError` (``invalidFilter``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MAX_FILTER_CHARS = 2_000
MAX_DEPTH = 12
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
# Attributes compared exactly (RFC 7643: caseExact true); every other string ignores case.
CASE_EXACT = frozenset({"id", "externalid"})

_TOKEN = re.compile(r'\s*(\(|\)|\[|\]|"(?:[^"\\]|\\.)*"|[^\s()\[\]"]+)')
_ATTR = re.compile(r"^[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$")


class FilterError(ValueError):
    """A filter or path not in the grammar, or over the bounds (``invalidFilter``, ``invalidPath``)."""


@dataclass(frozen=True)
class AttrPath:
    """``[schema:]attr[.sub]``; ``schema`` is the extension's URN (None: the core schema)."""

    attr: str
    sub: str | None = None
    schema: str | None = None

    def __str__(self) -> str:
        text = self.attr + (f".{self.sub}" if self.sub else "")
        return f"{self.schema}:{text}" if self.schema else text


@dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str
    value: Any


@dataclass(frozen=True)
class Present:
    path: AttrPath


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: a multi-valued attribute with an element matching ``inner``."""

    path: AttrPath
    inner: Filter


Filter = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True)
class PatchPath:
    """A PATCH operation's ``path``: an attribute, optionally narrowed to the elements matching ``where``."""

    path: AttrPath
    where: Filter | None = None
    sub: str | None = None  # after ``attr[...]``: ``emails[type eq "work"].value``


def parse_attr(text: str, schemas: Sequence[str] = ()) -> AttrPath:
    """``name.givenName``, ``urn:…:User:employeeNumber``: the attribute path, its URN split off."""
    schema = None
    lowered = text.lower()
    for urn in sorted(schemas, key=len, reverse=True):
        if lowered.startswith(urn.lower() + ":"):
            schema, text = urn, text[len(urn) + 1 :]
            break
    if not _ATTR.match(text):
        raise FilterError(f"{text!r} is not an attribute path")
    attr, _, sub = text.partition(".")
    return AttrPath(attr, sub or None, schema)


def _tokens(text: str) -> list[str]:
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter is over {MAX_FILTER_CHARS} characters")
    tokens, at = [], 0
    while at < len(text):
        if not text[at:].strip():
            break
        match = _TOKEN.match(text, at)
        if match is None:
            raise FilterError(f"cannot read the filter at {text[at : at + 20]!r}")
        tokens.append(match[1])
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, schemas: Sequence[str]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.schemas = schemas

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.at += 1
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise FilterError(f"expected {token!r} in the filter")

    def parse_or(self, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested deeper than {MAX_DEPTH}")
        node = self.parse_and(depth)
        while (self.peek() or "").lower() == "or":
            self.take()
            node = Or(node, self.parse_and(depth))
        return node

    def parse_and(self, depth: int) -> Filter:
        node = self.parse_unary(depth)
        while (self.peek() or "").lower() == "and":
            self.take()
            node = And(node, self.parse_unary(depth))
        return node

    def parse_unary(self, depth: int) -> Filter:
        token = self.take()
        if token.lower() == "not":
            self.expect("(")
            inner = self.parse_or(depth + 1)
            self.expect(")")
            return Not(inner)
        if token == "(":
            inner = self.parse_or(depth + 1)
            self.expect(")")
            return inner
        path = parse_attr(token, self.schemas)
        if self.peek() == "[":
            self.take()
            inner = self.parse_or(depth + 1)
            self.expect("]")
            return ValuePath(path, inner)
        op = self.take().lower()
        if op == "pr":
            return Present(path)
        if op not in OPERATORS:
            raise FilterError(f"{op!r} is not a filter operator")
        return Compare(path, op, _literal(self.take()))


def _literal(token: str) -> Any:
    if token.startswith('"'):
        try:
            return json.loads(token)
        except ValueError:
            raise FilterError(f"{token} is not a string") from None
    lowered = token.lower()
    if lowered in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[lowered]
    try:
        return json.loads(token)  # a number
    except ValueError:
        raise FilterError(f"{token!r} is not a value: quote strings") from None


def parse_filter(text: str, schemas: Sequence[str] = ()) -> Filter:
    """The filter's tree; FilterError when it is not a filter."""
    parser = _Parser(text, schemas)
    if not parser.tokens:
        raise FilterError("the filter is empty")
    node = parser.parse_or(0)
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek()!r} in the filter")
    return node


def parse_patch_path(text: str, schemas: Sequence[str] = ()) -> PatchPath:
    """A PATCH ``path``: ``title``, ``name.givenName``, ``emails[type eq "work"].value``, ``members[…]``."""
    if "[" not in text:
        return PatchPath(parse_attr(text.strip(), schemas))
    head, _, rest = text.partition("[")
    inner, closing, tail = rest.rpartition("]")
    if not closing or (tail and not tail.startswith(".")):
        raise FilterError(f"{text!r} is not a path")
    return PatchPath(parse_attr(head.strip(), schemas), parse_filter(inner, schemas), tail[1:] or None)


# --- evaluation ---------------------------------------------------------------------


def get_key(container: Any, name: str) -> Any:
    """``container[name]`` ignoring the case of the name (attribute names are case-insensitive)."""
    if not isinstance(container, dict):
        return None
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)


def _values(resource: dict[str, Any], path: AttrPath) -> Iterator[Any]:
    container = get_key(resource, path.schema) if path.schema else resource
    value = get_key(container, path.attr)
    items = value if isinstance(value, list) else [value]
    for item in items:
        if path.sub is not None:
            item = get_key(item, path.sub)
        elif isinstance(item, dict) and "value" in item:
            item = item["value"]  # a multi-valued attribute's element compares by its value
        if item is not None:
            yield item


def _compare(actual: Any, op: str, expected: Any, exact: bool) -> bool:
    if isinstance(actual, str) and isinstance(expected, str) and not exact:
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if not isinstance(actual, type(expected)) or isinstance(expected, bool) or expected is None:
        return False
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[
            op
        ]
    return bool(
        {
            "gt": actual > expected,
            "ge": actual >= expected,
            "lt": actual < expected,
            "le": actual <= expected,
        }[op]
    )


def matches(node: Filter, resource: dict[str, Any]) -> bool:
    """Whether ``resource`` (a dict as answered) matches the filter."""
    if isinstance(node, And):
        return matches(node.left, resource) and matches(node.right, resource)
    if isinstance(node, Or):
        return matches(node.left, resource) or matches(node.right, resource)
    if isinstance(node, Not):
        return not matches(node.inner, resource)
    if isinstance(node, Present):
        return any(v not in ("", [], {}) for v in _values(resource, node.path))
    if isinstance(node, ValuePath):
        container = get_key(resource, node.path.schema) if node.path.schema else resource
        elements = get_key(container, node.path.attr)
        elements = elements if isinstance(elements, list) else [elements] if elements else []
        return any(isinstance(e, dict) and matches(node.inner, e) for e in elements)
    exact = node.path.attr.lower() in CASE_EXACT and node.path.sub is None
    found = list(_values(resource, node.path))
    if node.op == "ne":
        return all(_compare(v, "ne", node.value, exact) for v in found)
    if node.value is None:
        return node.op == "eq" and not found
    return any(_compare(v, node.op, node.value, exact) for v in found)


def equality_keys(node: Filter) -> dict[str, str] | None:
    """The ``attr eq "value"`` terms every match must satisfy (an ``and`` of them, at the top), by attribute.

    ``{"username": "a@b"}`` for ``userName eq "a@b" and active eq true``; None
    when nothing narrows the search (an ``or``, a ``not``, no equality at the top).
    """
    if isinstance(node, And):
        left, right = equality_keys(node.left), equality_keys(node.right)
        if left is None and right is None:
            return None
        return (left or {}) | (right or {})
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and isinstance(node.value, str)
        and node.path.schema is None
    ):
        name = node.path.attr.lower() + (f".{node.path.sub.lower()}" if node.path.sub else "")
        return {name: node.value}
    return None
