"""The review's problem lists and its cross-row checks.

A review may meet a million problems, so :class:`ProblemLog` keeps the first
:data:`MAX_LISTED` of them in row order and, per kind of problem, a count and
the first :data:`MAX_EXAMPLES`: memory stays bounded however bad the file.

The checks that need more than one row run set-based over the review's
scratch table (``review_rows``, see ``producer/sql/review.sql``) and stream their
findings into a log: repeated e-mails, a domain one edit away from the usual
one, team names spelled in several ways, and teams with more than one Manager.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.intake.mapping import ColumnMapping
from core.intake.queries import QUERIES
from core.intake.validation import Problem, _shown
from core.intake.webmail import PROVIDER_SET, email_domain_typo
from core.vocabulary import Mode

REVIEW_MARK_DUPLICATE_EMAILS = QUERIES["review_mark_duplicate_emails"]
REVIEW_DOMINANT_DOMAINS = QUERIES["review_dominant_domains"]
REVIEW_DOMAINS_NEAR = QUERIES["review_domains_near"]
REVIEW_DUPLICATE_EMAILS = QUERIES["review_duplicate_emails"]
REVIEW_EXTRA_MANAGERS = QUERIES["review_extra_managers"]
REVIEW_ROWS_WITH_DOMAINS = QUERIES["review_rows_with_domains"]
REVIEW_TEAM_VARIANTS = QUERIES["review_team_variants"]

MAX_LISTED = 1_000
MAX_EXAMPLES = 20
MAX_KINDS = 200
# A domain is "the usual one" when at least this share of addresses use it.
DOMINANT_SHARE = 0.5
# Typo domains looked up at most; a file with more is not mistyping one domain.
MAX_TYPO_DOMAINS = 1_000
_CURSOR_PREFETCH = 1_000
_QUOTED = re.compile(r"'[^'\n]*'")
_ADDRESS = re.compile(r"\S+@\S+")
_NUMBER = re.compile(r"\d+")


def problem_kind(problem: Problem) -> str:
    """The message with its particulars (quoted values, addresses, numbers) masked:
    the same kind of problem on other rows has the same kind."""
    text = _QUOTED.sub("'…'", problem.message)
    return _NUMBER.sub("N", _ADDRESS.sub("…", text))


def problem_dict(problem: Problem) -> dict[str, Any]:
    """A problem as the review JSON carries it."""
    return {"row": problem.row, "column": problem.column, "value": problem.value, "message": problem.message}


@dataclass
class ProblemGroup:
    """One kind of problem in one column: how many, and the first few."""

    column: str
    kind: str
    count: int = 0
    examples: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The group as the review JSON carries it."""
        return {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "examples": [problem_dict(p) for p in self.examples],
        }


class ProblemLog:
    """Errors or warnings: every one counted, the first ``cap`` in row order kept.

    Problems arrive source by source (row validation, then each cross-row
    check), each source in row order; :meth:`end_source` merges a source into
    the kept list. Keeping each source's first ``cap`` is enough for the
    merged list to be the first ``cap`` overall.
    """

    def __init__(self, cap: int = MAX_LISTED) -> None:
        """Start empty; keep at most ``cap`` problems."""
        self.cap = cap
        self.total = 0
        self._kept: list[Problem] = []
        self._incoming: list[Problem] = []
        self._groups: dict[tuple[str, str], ProblemGroup] = {}

    def add(self, problem: Problem) -> None:
        """Count ``problem`` and keep it if it is among the first of its source."""
        self.total += 1
        if len(self._incoming) < self.cap:
            self._incoming.append(problem)
        key = (problem.column, problem_kind(problem))
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= MAX_KINDS:
                key = (problem.column, "other problems")
                group = self._groups.setdefault(key, ProblemGroup(*key))
            else:
                group = self._groups[key] = ProblemGroup(*key)
        group.count += 1
        if len(group.examples) < MAX_EXAMPLES:
            group.examples.append(problem)

    def end_source(self) -> None:
        """Merge the problems added since the last call into the kept ones."""
        # A stable sort: within a row, earlier sources come first.
        self._kept = sorted(self._kept + self._incoming, key=lambda p: p.row)[: self.cap]
        self._incoming = []

    @property
    def listed(self) -> list[Problem]:
        """The first problems in row order, at most ``cap``."""
        self.end_source()
        return self._kept

    @property
    def groups(self) -> list[ProblemGroup]:
        """Every kind of problem, the most frequent first."""
        return sorted(self._groups.values(), key=lambda g: (-g.count, g.examples[0].row))


async def stream(conn: asyncpg.Connection, query: str, *args: Any) -> AsyncIterator[asyncpg.Record]:
    """The records of ``query``, through a cursor (memory stays flat for any number)."""
    async for record in conn.cursor(query, *args, prefetch=_CURSOR_PREFETCH):
        yield record


async def check_duplicate_emails(
    conn: asyncpg.Connection, mapping: ColumnMapping, errors: ProblemLog
) -> None:
    """Reject later rows repeating an e-mail, naming the first row, as the import does."""
    await conn.execute(REVIEW_MARK_DUPLICATE_EMAILS)
    column = mapping.header_of("email")
    async for r in stream(conn, REVIEW_DUPLICATE_EMAILS):
        message = (
            f"{r['email']} is already on row {r['duplicate_of']}: each person may appear only once in a file"
        )
        errors.add(Problem(r["row_number"], column, r["raw_email"] or "", message))
    errors.end_source()


def one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns ``a`` into ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    if len(a) != len(b):
        shorter, longer = (a, b) if len(a) < len(b) else (b, a)
        return shorter[start:] == longer[start + 1 :]
    substituted = a[start + 1 :] == b[start + 1 :]
    swapped = a[start : start + 2] == b[start : start + 2][::-1] and a[start + 2 :] == b[start + 2 :]
    return substituted or swapped


async def check_domain_typos(
    conn: asyncpg.Connection, tenant: str, mapping: ColumnMapping, warnings: ProblemLog
) -> str | None:
    """Warn about addresses whose domain is one edit from the usual one; return that domain.

    The usual domain is the most common among the file's valid rows and the
    tenant's people, when it covers at least half of them and no other domain
    is as common. Known webmail domains, domains the tenant's people already
    use and typos validation already reported are left alone.
    """
    top = await conn.fetch(REVIEW_DOMINANT_DOMAINS, tenant)
    if not top or top[0]["addresses"] < DOMINANT_SHARE * top[0]["total"]:
        return None
    if len(top) > 1 and top[1]["addresses"] == top[0]["addresses"]:
        return None
    dominant: str = top[0]["domain"]
    typos: list[str] = []
    async for r in stream(conn, REVIEW_DOMAINS_NEAR, tenant, dominant):
        domain = r["domain"]
        if (
            domain not in PROVIDER_SET
            and email_domain_typo(domain) is None
            and one_edit_apart(domain, dominant)
        ):
            typos.append(domain)
            if len(typos) >= MAX_TYPO_DOMAINS:
                break
    if typos:
        column = mapping.header_of("email")
        async for r in stream(conn, REVIEW_ROWS_WITH_DOMAINS, typos):
            local, _, domain = r["email"].rpartition("@")
            raw = r["raw_email"] or ""
            message = (
                f"{_shown(raw.strip())}: did you mean '{local}@{dominant}'? '{domain}' is one typo "
                f"away from '{dominant}', the domain of most people here"
            )
            warnings.add(Problem(r["row_number"], column, raw, message))
    warnings.end_source()
    return dominant


async def check_team_variants(
    conn: asyncpg.Connection, tenant: str, mapping: ColumnMapping, warnings: ProblemLog
) -> None:
    """Warn where a team is spelled otherwise than the team it will be (case, spaces)."""
    async for r in stream(conn, REVIEW_TEAM_VARIANTS, tenant):
        name, row = r["name"], r["row_number"]
        if r["existing_name"] is not None:
            team = r["existing_name"]
            message = f"'{name}' on row {row} is the existing team '{team}'; it will be imported as '{team}'"
        else:
            team = r["first_name"]
            message = (
                f"'{name}' on row {row} is the team '{team}' (first written so on row {r['first_row']}); "
                f"it will be imported as '{team}'"
            )
        column = mapping.header_of("primary_team" if r["position"] == 0 else "secondary_teams")
        warnings.add(Problem(row, column, r["raw"] or "", message))
    warnings.end_source()


async def check_managers(
    conn: asyncpg.Connection, tenant: str, mode: str, mapping: ColumnMapping, warnings: ProblemLog
) -> None:
    """Warn on Manager rows that will not become their team's manager, saying who does."""
    column = mapping.header_of("role")
    async for r in stream(conn, REVIEW_EXTRA_MANAGERS, tenant, mode == Mode.ADD_ONLY):
        team = r["team"]
        if r["kept_manager"] is not None:
            message = (
                f"the team '{team}' already has a manager ({r['kept_manager']}), "
                "who stays its manager in add-only mode"
            )
        else:
            message = (
                f"the team '{team}' has more than one Manager row: row {r['first_row']} "
                f"({r['first_email']}) comes first and becomes its manager"
            )
        warnings.add(Problem(r["row_number"], column, r["raw_role"] or "", message))
    warnings.end_source()
