"""PATCH (RFC 7644 §3.5.2) applied to a resource as answered: add, replace, remove, with and without ``path``.

The forms identity providers send are all read: Okta's ``{"op": "replace",
"value": {"active": false}}``, Entra's capitalised ``"Replace"`` with
``"False"`` strings, value objects whose keys are paths
(``{"name.givenName": "Dana"}``, an extension URN's attribute), and filtered
paths (``emails[type eq "work"].value``, ``addresses[type eq "work"].locality``).
The result is the resource the person should become; the caller turns it into
a row (:func:`producer.web.scim.resources.row_of_user`), so a PATCH obeys the
same rules as a PUT and as a file. Attributes this service does not keep are
ignored (as a PUT ignores them); read-only ones cannot be patched (``mutability``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from producer.web.scim.errors import ScimError
from producer.web.scim.filters import (
    And,
    AttrPath,
    Compare,
    FilterError,
    PatchPath,
    get_key,
    matches,
    parse_patch_path,
)
from producer.web.scim.schemas import ENTERPRISE, PATCH_OP, RESOURCE_SCHEMAS, USER

MAX_OPERATIONS = 100
# Attributes kept here, by lower-cased name: their spelling in the resource.
_CORE = {
    n.lower(): n
    for n in ("userName", "name", "title", "preferredLanguage", "active", "addresses", "externalId")
}
_ENTERPRISE = {n.lower(): n for n in ("employeeNumber", "department")}
_READ_ONLY = frozenset({"id", "meta", "groups", "manager", "schemas"})
_IGNORED_READ_ONLY = frozenset({"emails"})  # the address is userName's; IdPs send it along


def _key(container: dict[str, Any], name: str, known: Mapping[str, str]) -> str:
    """The key ``name`` has (or should have) in ``container``."""
    lowered = name.lower()
    existing = next((k for k in container if k.lower() == lowered), None)
    return existing or known.get(lowered, name)


def _container(
    resource: dict[str, Any], path: AttrPath, create: bool
) -> tuple[dict[str, Any] | None, Mapping[str, str]]:
    if path.schema is None:
        return resource, _CORE
    key = _key(resource, path.schema, {ENTERPRISE.lower(): ENTERPRISE})
    if key not in resource and create:
        resource[key] = {}
    value = resource.get(key)
    return (value if isinstance(value, dict) else None), _ENTERPRISE


def _kept(path: AttrPath) -> bool:
    """Whether this service keeps the attribute; raises for read-only ones."""
    name = path.attr.lower()
    if name in _READ_ONLY:
        raise ScimError(400, f"{path} is read-only here", "mutability")
    if name in _IGNORED_READ_ONLY:
        return False
    return name in (_ENTERPRISE if path.schema else _CORE)


def _eq_terms(where: Any) -> dict[str, Any]:
    """The ``attr eq value`` terms of a filter, for a new element that must match it."""
    if isinstance(where, And):
        return _eq_terms(where.left) | _eq_terms(where.right)
    if isinstance(where, Compare) and where.op == "eq":
        return {where.path.attr: where.value}
    return {}


def _set(resource: dict[str, Any], target: PatchPath, value: Any, op: str) -> None:
    path = target.path
    if not _kept(path):
        return
    container, known = _container(resource, path, create=True)
    assert container is not None
    key = _key(container, path.attr, known)
    if target.where is None:
        if path.sub is None:
            if op == "add" and isinstance(value, list) and isinstance(container.get(key), list):
                container[key] = container[key] + value
            elif op == "add" and isinstance(value, dict) and isinstance(container.get(key), dict):
                container[key] = container[key] | value
            else:
                container[key] = value
            return
        inner = container.get(key)
        if not isinstance(inner, dict):
            inner = container[key] = {}
        inner[_key(inner, path.sub, {})] = value
        return
    elements = container.get(key)
    if not isinstance(elements, list):
        elements = container[key] = []
    chosen = [e for e in elements if isinstance(e, dict) and matches(target.where, e)]
    if not chosen:
        if op == "replace" and target.sub is None and not isinstance(value, dict):
            raise ScimError(400, f"no element of {path} matches the path's filter", "noTarget")
        chosen = [_eq_terms(target.where)]
        elements.append(chosen[0])
    for element in chosen:
        if target.sub is not None:
            element[_key(element, target.sub, {})] = value
        elif isinstance(value, dict):
            element.update(value)
        else:
            raise ScimError(400, f"the value for {path}[…] must be an object", "invalidValue")


def _remove(resource: dict[str, Any], target: PatchPath) -> None:
    path = target.path
    if not _kept(path):
        return
    container, _known = _container(resource, path, create=False)
    if container is None:
        return
    key = next((k for k in container if k.lower() == path.attr.lower()), None)
    if key is None:
        return
    if target.where is not None:
        elements = container[key] if isinstance(container[key], list) else []
        if target.sub is None:
            container[key] = [e for e in elements if not (isinstance(e, dict) and matches(target.where, e))]
        else:
            for element in elements:
                if isinstance(element, dict) and matches(target.where, element):
                    element.pop(
                        next((k for k in element if k.lower() == target.sub.lower()), target.sub), None
                    )
        return
    if path.sub is None:
        del container[key]
    elif isinstance(container[key], dict):
        inner = container[key]
        inner.pop(next((k for k in inner if k.lower() == path.sub.lower()), path.sub), None)


def _parse(path: str) -> PatchPath:
    try:
        parsed = parse_patch_path(path, RESOURCE_SCHEMAS)
    except FilterError as exc:
        raise ScimError(400, f"path {path!r}: {exc}", "invalidPath") from None
    if parsed.path.schema == USER:  # the core schema's URN names core attributes
        return dataclasses.replace(parsed, path=dataclasses.replace(parsed.path, schema=None))
    return parsed


def operations(body: Any) -> list[dict[str, Any]]:
    """The PatchOp body's operations, checked; ``invalidSyntax``/``tooMany`` otherwise."""
    if not isinstance(body, dict) or PATCH_OP.lower() not in {
        str(s).lower() for s in body.get("schemas") or []
    }:
        raise ScimError(400, f"a PATCH body is a {PATCH_OP} message", "invalidSyntax")
    ops = get_key(body, "Operations")
    if not isinstance(ops, list) or not ops or not all(isinstance(o, dict) for o in ops):
        raise ScimError(400, "Operations must be a non-empty list of operations", "invalidSyntax")
    if len(ops) > MAX_OPERATIONS:
        raise ScimError(400, f"at most {MAX_OPERATIONS} operations per PATCH", "tooMany")
    return ops


def apply_patch(resource: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The resource after the operations, in order (all or nothing: the input is not changed)."""
    result = copy.deepcopy(dict(resource))
    for operation in ops:
        op = str(get_key(operation, "op") or "").lower()
        path = get_key(operation, "path")
        value = get_key(operation, "value")
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"op must be add, replace or remove, not {op!r}", "invalidSyntax")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, "path must be a string", "invalidPath")
        if op == "remove":
            if not path:
                raise ScimError(400, "remove needs a path", "noTarget")
            if path.lower() == ENTERPRISE.lower():
                result.pop(next((k for k in result if k.lower() == path.lower()), path), None)
            else:
                _remove(result, _parse(path))
            continue
        if path and path.lower() in {s.lower() for s in RESOURCE_SCHEMAS}:
            path, value = None, {path: value}  # a schema's URN: its attributes, as a value object
        if path:
            _set(result, _parse(path), value, op)
            continue
        if not isinstance(value, dict):
            raise ScimError(
                400, f"{op} without a path needs an object of attributes as its value", "invalidValue"
            )
        for name, item in value.items():
            if name.lower() in {s.lower() for s in RESOURCE_SCHEMAS}:
                if not isinstance(item, dict):
                    raise ScimError(400, f"the value of {name} must be an object", "invalidValue")
                for sub_name, sub_value in item.items():
                    if sub_name.lower() != "schemas":  # a value object may name its own schema
                        _set(result, _parse(f"{name}:{sub_name}"), sub_value, op)
            else:
                _set(result, _parse(name), item, op)
    return result
