"""What the SCIM service advertises (RFC 7643 §5–§7): ServiceProviderConfig, ResourceTypes, Schemas.

Exactly what works is advertised: PATCH, Bulk (``maxOperations``,
``maxPayloadSize``), filter (``maxResults``), no sort, no ETags, no change-password. The User schema lists
only the attributes a person has here; ``manager`` and ``groups`` are
readOnly (a manager is derived from the primary team, memberships are the
teams), and so is ``emails`` (the address is ``userName``).
"""

from __future__ import annotations

from typing import Any, Final

USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BULK_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE: Final = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SEARCH_REQUEST: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
SPC: Final = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE: Final = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_SCHEMAS: Final = (USER, ENTERPRISE)

MAX_BULK_OPERATIONS: Final = 1_000
MAX_BULK_PAYLOAD: Final = 4 * 1024 * 1024
"""A Bulk's bounds (``bulk.maxOperations``, ``bulk.maxPayloadSize``): 1,000 people, one import."""
MAX_RESULTS: Final = 200
"""The most resources one list answers (``filter.maxResults``); ``count`` above it is lowered to it."""


def _attr(
    name: str,
    kind: str = "string",
    *,
    required: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    multi: bool = False,
    case_exact: bool = False,
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
    canonical: list[str] | None = None,
) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description,
        "required": required,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    }
    if sub is not None:
        attribute["subAttributes"] = sub
    if canonical is not None:
        attribute["canonicalValues"] = canonical
    if kind == "reference":
        attribute["referenceTypes"] = ["User"]
    return attribute


USER_ATTRIBUTES: Final = [
    _attr(
        "userName",
        required=True,
        uniqueness="server",
        description="The person's e-mail address, lower-cased; a change is a rename of the same person.",
    ),
    _attr(
        "name",
        "complex",
        required=True,
        sub=[
            _attr("givenName", required=True, description="First name."),
            _attr("familyName", required=True, description="Last name."),
        ],
    ),
    _attr("title", description="Job title."),
    _attr("preferredLanguage", description="An ISO 639-1 code (en, fr) or a language's English name."),
    _attr("active", "boolean", description="false deactivates the person (nobody is ever deleted)."),
    _attr(
        "emails",
        "complex",
        multi=True,
        mutability="readOnly",
        description="The person's one address: userName (read-only; set userName to change it).",
        sub=[
            _attr("value", mutability="readOnly"),
            _attr("type", mutability="readOnly", canonical=["work"]),
            _attr("primary", "boolean", mutability="readOnly"),
        ],
    ),
    _attr(
        "addresses",
        "complex",
        multi=True,
        description="The work address's locality is the person's location; nothing else is kept.",
        sub=[_attr("locality", description="The person's location.")],
    ),
]

ENTERPRISE_ATTRIBUTES: Final = [
    _attr(
        "employeeNumber",
        mutability="readOnly",
        description="The employee id, as externalId (read-only here: write it as externalId).",
    ),
    _attr(
        "department",
        description="The person's primary team (created if new): their manager is that team's manager.",
    ),
    _attr(
        "manager",
        "complex",
        mutability="readOnly",
        description="Read-only: derived from the primary team (its manager), never set directly.",
        sub=[
            _attr("value", mutability="readOnly", description="The manager's id."),
            _attr("displayName", mutability="readOnly"),
        ],
    ),
]


GROUP_ATTRIBUTES: Final = [
    _attr(
        "displayName",
        required=True,
        uniqueness="server",
        mutability="immutable",
        description="The team's name (compared ignoring case and spaces); a team is never renamed here.",
    ),
    _attr(
        "members",
        "complex",
        multi=True,
        description="The people whose primary or secondary team it is; adding makes it a secondary team.",
        sub=[
            _attr("value", mutability="immutable", description="A User's id."),
            _attr("$ref", "reference", mutability="immutable", description="The User's URL."),
            _attr("type", mutability="immutable", canonical=["User"]),
        ],
    ),
]


def _schema(urn: str, name: str, description: str, attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [SCHEMA],
        "id": urn,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": f"/Schemas/{urn}"},
    }


SCHEMAS: Final = {
    USER: _schema(USER, "User", "A person of the tenant", USER_ATTRIBUTES),
    GROUP: _schema(GROUP, "Group", "A team of the tenant", GROUP_ATTRIBUTES),
    ENTERPRISE: _schema(
        ENTERPRISE, "EnterpriseUser", "Employee id, primary team, manager", ENTERPRISE_ATTRIBUTES
    ),
}

RESOURCE_TYPES: Final[dict[str, dict[str, Any]]] = {
    "User": {
        "schemas": [RESOURCE_TYPE],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A person of the tenant",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/User"},
    },
    "Group": {
        "schemas": [RESOURCE_TYPE],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "A team of the tenant",
        "schema": GROUP,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/Group"},
    },
}


def service_provider_config(base: str) -> dict[str, Any]:
    """The ServiceProviderConfig: what this service supports, and nothing it does not."""
    return {
        "schemas": [SPC],
        "documentationUri": "https://example.invalid/bulk-import#scim",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": MAX_BULK_OPERATIONS,
            "maxPayloadSize": MAX_BULK_PAYLOAD,
        },
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A tenant's SCIM token: bulk-import token create --tenant T --scim",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }
