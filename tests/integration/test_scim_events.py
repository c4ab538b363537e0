"""SCIM imports' events (core.webhooks.events.record_scim_batches): one per tenant and pass."""

from __future__ import annotations

import io
from typing import Any

from core.intake.reading import open_source
from core.intake.submit import ImportRequest, record_import
from core.tenants import ensure_tenant
from core.vocabulary import ImportOrigin, ImportState
from core.webhooks.events import record_import_event, record_scim_batches

CSV = b"First name,Last name,Email\nDana,Cho,dana@example.com\n"


async def test_done_scim_imports_are_reported_together(conn: Any, tenant: str) -> None:
    transaction = conn.transaction()
    await transaction.start()  # never committed: the worker's housekeeping cannot see these imports
    try:
        await ensure_tenant(conn, tenant)
        await conn.execute(
            "INSERT INTO webhook_endpoints (tenant_id, url, secret, events)"
            " VALUES ($1, 'https://hooks.example.com/x', 'whsec_x', '{import.completed}')",
            tenant,
        )
        ids = []
        for _ in range(3):
            with open_source(io.BytesIO(CSV)) as source:
                request = ImportRequest(tenant=tenant, origin=ImportOrigin.SCIM, filename="SCIM PATCH")
                ids.append(await record_import(conn, request, source))
        await conn.execute("UPDATE imports SET state = 'done' WHERE id = ANY($1::bigint[])", ids)
        for import_id in ids:
            assert await record_import_event(conn, import_id, ImportState.DONE) is None  # not alone

        anchors = await record_scim_batches(conn)

        assert max(ids) in anchors
        events = await conn.fetch(
            "SELECT e.import_id, e.type, e.payload, count(d.id) AS deliveries FROM webhook_events e"
            " LEFT JOIN webhook_deliveries d ON d.event_id = e.id WHERE e.tenant_id = $1 GROUP BY e.id",
            tenant,
        )
        assert [(e["import_id"], e["type"], e["deliveries"]) for e in events] == [
            (max(ids), "import.completed", 1)
        ]
        payload = events[0]["payload"]
        assert payload["data"]["scim"]["imports"] == ids
        assert tenant not in {
            r["tenant_id"]
            for r in await conn.fetch(
                "SELECT tenant_id FROM imports WHERE origin = 'scim' AND NOT scim_reported AND state = 'done'"
            )
        }
        assert max(ids) not in await record_scim_batches(conn)  # reported once
    finally:
        await transaction.rollback()
