"""The resync measurement (issue 28): a nightly file of a whole population, 1% of it changed.

After the system measurement has imported the generated file (``bench-system``),
the same people again in sync mode with 1% of the rows changed, file → done, by
the same producer command and Procfile worker, so that ``resync_seconds`` stands
beside ``system_seconds`` of the same run. The changes, deterministic for a file:

- one manager change per 25 teams: the team's Manager row becomes a Learner and
  the row after it (a member of the same team) its Manager (two rows each);
- the rest of the 1% (rows // 100 in all), spread evenly over the file and never
  a Manager row: alternately a new job title, and a move to the primary team of
  the last other team seen (an existing team).

Every other row is the first import's, so the recording settles it as unchanged
(``core.intake.submit``) and only the changed rows travel as messages.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from harness import BenchError, procfile_command

TEAMS_PER_MANAGER_CHANGE = 25
CHANGED_SHARE = 100  # one row in this many is changed
# The system run's figures that the resync's import overwrites, kept as resync_* too.
_ALSO_KEPT = ("producer_peak_rss_mb", "worker_peak_rss_mb", "worker_main_peak_rss_mb")


def _rows(source: Path) -> tuple[list[str], list[list[str]]]:
    with source.open(newline="", encoding="utf-8") as inp:
        reader = csv.reader(inp)
        header = next(reader)
        return header, [row + [""] * (len(header) - len(row)) for row in reader]


def one_percent_changed(source: Path, target: Path) -> dict[str, int]:
    """Write ``source`` with 1% of its rows changed (see the module); return how many of each kind."""
    header, rows = _rows(source)
    role, team, title = header.index("Role"), header.index("Primary team"), header.index("Job title")
    changed: set[int] = set()
    managers = 0
    team_number = 0
    for n, row in enumerate(rows):
        if row[role] != "Manager":
            continue
        team_number += 1
        follower = n + 1
        if (
            team_number % TEAMS_PER_MANAGER_CHANGE == 0
            and follower < len(rows)
            and rows[follower][team] == row[team]
            and rows[follower][role] == "Learner"
        ):
            row[role], rows[follower][role] = "Learner", "Manager"
            changed |= {n, follower}
            managers += 1
    budget = max(0, len(rows) // CHANGED_SHARE - len(changed))
    stride = max(1, len(rows) // budget) if budget else 0
    titles = moves = 0
    last_team = other_team = ""  # the previous row's team, and the last team before the current one
    for n, row in enumerate(rows):
        if row[team] != last_team:
            other_team, last_team = last_team, row[team]
        due = stride and n % stride == stride // 2 and titles + moves < budget
        if not due or n in changed or row[role] == "Manager":
            continue
        if titles <= moves or not other_team:
            row[title] = f"Senior {row[title]}" if row[title] else "Analyst"
            titles += 1
        else:
            row[team] = other_team
            moves += 1
        changed.add(n)
    with target.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return {"changed_rows": len(changed), "manager_changes": managers, "titles": titles, "team_moves": moves}


async def measure_resync(bench: Any, system_keys: tuple[str, ...]) -> None:
    """Import the system run's people again, 1% changed, sync, file → done, as ``resync_*``."""
    import asyncpg

    if "system_rows_per_s" not in bench.result:
        raise BenchError("resync imports the system run's people again: put system before it in --only")
    path = bench.work_dir / "people-resync.csv"
    changes = one_percent_changed(bench.csv_path, path)
    kept = {key: bench.result[key] for key in (*system_keys, *_ALSO_KEPT) if key in bench.result}
    conn = await asyncpg.connect(bench.database_url)
    try:
        worker = bench.worker(procfile_command("worker"), "resync")
        try:
            await bench._timed_import(conn, "bench-system", worker, path, mode="sync")
        finally:
            worker.stop()
        imp = await conn.fetchrow(
            "SELECT i.id, i.deactivated, i.invalid_rows, i.unchanged_at_recording,"
            " sum(c.created)::int AS created, sum(c.updated)::int AS updated,"
            " sum(c.unchanged)::int AS unchanged"
            " FROM imports i JOIN import_counters c ON c.import_id = i.id"
            " WHERE i.tenant_id = 'bench-system' GROUP BY i.id ORDER BY i.id DESC LIMIT 1"
        )
        # What the rows' work itself took: first to last batch of the workers (None: no batch).
        span = await conn.fetchval(
            "SELECT extract(epoch FROM max(settled_at) - min(settled_at))::float8 FROM import_rows"
            " WHERE import_id = $1 AND person_version IS NULL AND status <> 'invalid'",
            imp["id"],
        )
    finally:
        await conn.close()
    measured = (*system_keys, *_ALSO_KEPT)
    bench.result |= {f"resync_{key.removeprefix('system_')}": bench.result[key] for key in measured}
    bench.result |= kept
    bench.result["resync_rows_span_seconds"] = None if span is None else round(span, 2)
    figures = {key: imp[key] for key in ("created", "updated", "unchanged", "deactivated", "invalid_rows")}
    bench.figures["resync"] = changes | figures | {"unchanged_at_recording": imp["unchanged_at_recording"]}
