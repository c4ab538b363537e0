"""The same changes made through SCIM and through CSV imports leave the same people, teams and managers.

Hypothesis draws a sequence of changes (a person created or updated, with a
title and a primary team spelled in any case, or renamed to a new address);
one tenant gets them as SCIM writes (POST, PUT, PATCH userName), another as
one-row CSV imports (a Previous email column for a rename), both over the
same seed file with a manager per team. The two tenants' exports must be
equal: every column, the status, the manager (derived from the team) and the
team's spelling (the first one written wins on both).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db import connect
from core.settings import Settings
from producer.web.app import create_app
from producer.web.tokens import create_token
from tests.support.imports import export_rows, person, run_import, write_csv
from tests.support.services import WorkerProcess

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEED = [
    person("Mia", "Alpha", "mia@example.com", "Alpha", "Manager"),
    person("Max", "Beta", "max@example.com", "Beta", "Manager"),
]
SLOTS = 3
HEADER = ["Email", "First name", "Last name", "Job title", "Primary team", "Previous email"]

changes = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"),
            st.integers(0, SLOTS - 1),
            st.sampled_from(["Ann", "Bo", "Cy"]),
            st.sampled_from(["", "Engineer", "Lead"]),
            st.sampled_from(["", "Alpha", "alpha ", "BETA", "Gamma", "gamma"]),
        ),
        st.tuples(st.just("rename"), st.integers(0, SLOTS - 1)),
    ),
    min_size=1,
    max_size=5,
)


async def _scenario(database_url: str, sequence: list[tuple[Any, ...]], tmp: Path) -> None:
    scim_tenant, csv_tenant = f"t-s{uuid.uuid4().hex[:10]}", f"t-c{uuid.uuid4().hex[:10]}"
    conn = await connect(database_url)
    app = create_app(Settings.from_env())
    try:
        for tenant in (scim_tenant, csv_tenant):
            await run_import(conn, write_csv(tmp / f"seed-{tenant}.csv", SEED), tenant)
        token = (await create_token(conn, scim_tenant, "idp", scim=True)).secret
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://idp") as http,
        ):
            emails: dict[int, str] = {}
            ids: dict[int, str] = {}
            for step, change in enumerate(sequence):
                slot = change[1]
                if change[0] == "rename":
                    if slot not in emails:
                        continue
                    new = f"renamed-{step}@example.com"
                    body = {
                        "schemas": [PATCH],
                        "Operations": [{"op": "replace", "path": "userName", "value": new}],
                    }
                    response = await http.patch(f"/scim/v2/Users/{ids[slot]}", json=body, headers=headers)
                    assert response.status_code == 200, response.text
                    current = await export_rows(conn, csv_tenant)
                    old = current[emails[slot]]
                    row = [
                        new,
                        old["First name"],
                        old["Last name"],
                        old["Job title"],
                        old["Primary team"],
                        emails[slot],
                    ]
                    await run_import(
                        conn, write_csv(tmp / f"{csv_tenant}-{step}.csv", [row], HEADER), csv_tenant
                    )
                    emails[slot] = new
                    continue
                _, _, first, title, team = change
                email = emails.setdefault(slot, f"p{slot}@example.com")
                user = {
                    "schemas": [USER, ENTERPRISE],
                    "userName": email,
                    "name": {"givenName": first, "familyName": "Doe"},
                    "title": title,
                    ENTERPRISE: {"department": team},
                }
                if slot in ids:
                    response = await http.put(f"/scim/v2/Users/{ids[slot]}", json=user, headers=headers)
                    assert response.status_code == 200, response.text
                else:
                    response = await http.post("/scim/v2/Users", json=user, headers=headers)
                    assert response.status_code == 201, response.text
                    ids[slot] = response.json()["id"]
                row = [email, first, "Doe", title, team, ""]
                await run_import(conn, write_csv(tmp / f"{csv_tenant}-{step}.csv", [row], HEADER), csv_tenant)
        assert await export_rows(conn, scim_tenant) == await export_rows(conn, csv_tenant)
    finally:
        await conn.close()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=changes)
def test_scim_and_csv_leave_the_same_people(
    database_url: str, redis_url: str, worker: WorkerProcess, tmp_path: Path, sequence: list[tuple[Any, ...]]
) -> None:
    asyncio.run(_scenario(database_url, sequence, tmp_path))
