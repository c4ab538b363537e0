"""A SCIM 2.0 service provider (RFC 7643, RFC 7644) at ``/scim/v2``, on the same pipeline as a file.

- ``schemas``: what is advertised (ServiceProviderConfig, ResourceTypes, Schemas documents)
- ``discovery``: their routes
- ``filters``: filters and attribute paths, parsed and evaluated (plain)
- ``resources``: a person as a User, a User as an import row (plain)
- ``patch``: PATCH operations applied to a User (plain)
- ``requests``: the SCIM token, JSON bodies, list parameters and projections
- ``writes``: a write as an import, waited for
- ``planning``: one write to a User, planned as its row
- ``users``: the ``/Users`` routes; ``groups``: the ``/Groups`` routes (teams); ``bulk``: ``/Bulk``
- ``errors``: SCIM error objects

The app is mounted by :mod:`producer.web.app`, sharing its state (the pool).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producer.web.scim import bulk, discovery, groups, users
from producer.web.scim.errors import error_response

ROUTES = [
    Route("/ServiceProviderConfig", discovery.provider_config, methods=["GET"]),
    Route("/ResourceTypes", discovery.resource_types, methods=["GET"]),
    Route("/ResourceTypes/{name}", discovery.resource_types, methods=["GET"]),
    Route("/Schemas", discovery.schemas, methods=["GET"]),
    Route("/Schemas/{urn}", discovery.schemas, methods=["GET"]),
    Route("/Users", users.list_users, methods=["GET"]),
    Route("/Users", users.create_user, methods=["POST"]),
    Route("/Users/.search", users.search_users, methods=["POST"]),
    Route("/Groups/.search", groups.search_groups, methods=["POST"]),
    Route("/.search", groups.search_everything, methods=["POST"]),
    Route("/Users/{user_id}", users.get_user, methods=["GET"]),
    Route("/Users/{user_id}", users.replace_user, methods=["PUT"]),
    Route("/Users/{user_id}", users.patch_user, methods=["PATCH"]),
    Route("/Users/{user_id}", users.delete_user, methods=["DELETE"]),
    Route("/Bulk", bulk.bulk, methods=["POST"]),
    Route("/Groups", groups.list_groups, methods=["GET"]),
    Route("/Groups", groups.create_group, methods=["POST"]),
    Route("/Groups/{group_id}", groups.get_group, methods=["GET"]),
    Route("/Groups/{group_id}", groups.replace_group, methods=["PUT"]),
    Route("/Groups/{group_id}", groups.patch_group, methods=["PATCH"]),
    Route("/Groups/{group_id}", groups.delete_group, methods=["DELETE"]),
]


async def _on_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


def scim_app(state: State) -> Any:
    """The SCIM app, to be mounted at ``/scim/v2``; ``state`` is the web app's (its pool and settings)."""
    app = Starlette(routes=ROUTES, exception_handlers={HTTPException: _on_http_exception})
    app.state = state
    return app
