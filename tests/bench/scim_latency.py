"""SCIM write latency: single ``POST /Users`` (median, p99), and a Bulk against the same people as a CSV.

A script, not a test (pytest collects nothing here). It makes a scratch
database (``bulk_import_bench_<pid>``) on the server of DATABASE_URL, starts the
Procfile's ``worker:`` and ``web:`` lines on it, and measures, on a fresh tenant
each:

- ``--requests N`` single ``POST /scim/v2/Users``, one after the other (each is a
  one-row import the answer waits for): median and p99 latency;
- one ``POST /scim/v2/Bulk`` of ``--bulk M`` creations (one import, a row each),
  and the same people as one CSV file through ``POST /api/imports`` (polled to
  done): seconds each, and their ratio.

    .venv/bin/python tests/bench/scim_latency.py --requests 1000 --bulk 1000
    .venv/bin/python tests/bench/scim_latency.py --requests 20 --bulk 20 --json   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import (
    DB_NAME,
    NAMESPACE,
    ROOT,
    BenchError,
    Worker,
    procfile_command,
    server_url,
    subprocess_env,
    with_database,
)

from core.columns import TEMPLATE_HEADERS
from producer.web.tokens import create_token

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def _user(email: str) -> dict[str, object]:
    return {"schemas": [USER], "userName": email, "name": {"givenName": "Bench", "familyName": "Person"}}


async def _tokens(database_url: str) -> tuple[str, str, str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        single = (await create_token(conn, "bench-scim-single", "bench", scim=True)).secret
        bulk = (await create_token(conn, "bench-scim-bulk", "bench", scim=True)).secret
        api = (await create_token(conn, "bench-csv", "bench")).secret
        return single, bulk, api, database_url
    finally:
        await conn.close()


async def _drop(database_url: str) -> None:
    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    finally:
        await conn.close()


def _singles(http: httpx.Client, token: str, count: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    times = []
    for i in range(count):
        started = time.perf_counter()
        response = http.post("/scim/v2/Users", json=_user(f"single-{i}@bench.example"), headers=headers)
        times.append(time.perf_counter() - started)
        if response.status_code != 201:
            raise BenchError(f"POST /Users answered {response.status_code}: {response.text}")
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return {"single_median_ms": statistics.median(times) * 1000, "single_p99_ms": p99 * 1000}


def _bulk(http: httpx.Client, token: str, count: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": str(i), "data": _user(f"p{i}@bench.example")}
        for i in range(count)
    ]
    started = time.perf_counter()
    response = http.post("/scim/v2/Bulk", json={"schemas": [BULK], "Operations": ops}, headers=headers)
    seconds = time.perf_counter() - started
    statuses = {op["status"] for op in response.json().get("Operations", [])}
    if response.status_code != 200 or statuses != {"201"}:
        raise BenchError(f"the Bulk answered {response.status_code} with statuses {statuses}")
    return seconds


def _csv(http: httpx.Client, token: str, count: int) -> float:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TEMPLATE_HEADERS)
    for i in range(count):
        writer.writerow(["Bench", "Person", f"p{i}@bench.example"] + [""] * (len(TEMPLATE_HEADERS) - 3))
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    response = http.post(
        "/api/imports", params={"mode": "upsert"}, content=out.getvalue().encode(), headers=headers
    )
    if response.status_code != 202:
        raise BenchError(f"POST /api/imports answered {response.status_code}: {response.text}")
    import_id = response.json()["id"]
    while True:
        state = http.get(f"/api/imports/{import_id}", headers=headers).json()["state"]
        if state == "done":
            return time.perf_counter() - started
        if state in ("failed", "cancelled", "blocked"):
            raise BenchError(f"the CSV import ended {state}")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    database_url = with_database(server_url(), DB_NAME)
    env = subprocess_env(
        dict(os.environ), DATABASE_URL=database_url, REDIS_NAMESPACE=NAMESPACE, PORT=str(args.port)
    )
    bulk_import = str(Path(sys.executable).parent / "bulk-import")
    subprocess.run([bulk_import, "migrate"], env=env, check=True, cwd=ROOT)
    logs = Path(f"/tmp/scim-bench-{os.getpid()}")
    logs.mkdir(exist_ok=True)
    worker = Worker(
        procfile_command("worker"), env, logs / "worker.log", int(env.get("WORKER_PROCESSES", "2"))
    )
    web = None
    try:
        worker.start()
        with (logs / "web.log").open("ab") as log:
            web = subprocess.Popen(
                ["sh", "-c", "exec " + procfile_command("web")],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        single, bulk, api, _ = asyncio.run(_tokens(database_url))
        with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=120) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/scim/v2/ServiceProviderConfig").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"the web process did not answer; see {logs / 'web.log'}")
                time.sleep(0.1)
            result: dict[str, object] = {"requests": args.requests, "bulk_operations": args.bulk}
            result |= _singles(http, single, args.requests)
            result["bulk_seconds"] = _bulk(http, bulk, args.bulk)
            result["csv_seconds"] = _csv(http, api, args.bulk)
            result["bulk_vs_csv"] = float(result["bulk_seconds"]) / float(result["csv_seconds"])  # type: ignore[arg-type]
        print(json.dumps(result) if args.json else "\n".join(f"{k:>18}: {v}" for k, v in result.items()))
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        worker.stop()
        asyncio.run(_drop(database_url))


if __name__ == "__main__":
    main()
