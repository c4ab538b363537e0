"""Check one row's cells and turn them into a clean row, or say what is wrong.

Pure functions, no I/O: the producer calls `validate_row` for every data row.
Checks that need other rows (duplicate e-mails, several managers for a team,
team spelling variants, the tenant's usual domain) are done set-based in the
database; `team_key` is the team identity they share with this module.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from producer.fields import DEFAULT_ROLE, FIELDS_BY_NAME, ROLES, SECONDARY_TEAM_SEPARATOR
from producer.mapping import ColumnMapping, normalise

# ISO 639-1: all 184 codes, bh (Bihari, a collective code) included; ";" separates
# other English names for the same code.
_ISO_639_1 = """
aa Afar|ab Abkhazian|ae Avestan|af Afrikaans|ak Akan|am Amharic|an Aragonese|ar Arabic
as Assamese|av Avaric|ay Aymara|az Azerbaijani|ba Bashkir|be Belarusian|bg Bulgarian
bi Bislama|bh Bihari;Bihari languages|bm Bambara|bn Bengali;Bangla|bo Tibetan|br Breton|bs Bosnian
ca Catalan;Valencian|ce Chechen|ch Chamorro|co Corsican|cr Cree|cs Czech
cu Church Slavic;Church Slavonic;Old Church Slavonic;Old Slavonic;Old Bulgarian
cv Chuvash|cy Welsh|da Danish|de German|dv Divehi;Dhivehi;Maldivian|dz Dzongkha|ee Ewe
el Greek;Modern Greek|en English|eo Esperanto|es Spanish;Castilian|et Estonian|eu Basque
fa Persian;Farsi|ff Fulah;Fula|fi Finnish|fj Fijian|fo Faroese|fr French
fy Western Frisian;Frisian|ga Irish|gd Gaelic;Scottish Gaelic|gl Galician|gn Guarani
gu Gujarati|gv Manx|ha Hausa|he Hebrew|hi Hindi|ho Hiri Motu|hr Croatian
ht Haitian;Haitian Creole|hu Hungarian|hy Armenian|hz Herero|ia Interlingua|id Indonesian
ie Interlingue;Occidental|ig Igbo|ii Sichuan Yi;Nuosu|ik Inupiaq|io Ido|is Icelandic
it Italian|iu Inuktitut|ja Japanese|jv Javanese|ka Georgian|kg Kongo|ki Kikuyu;Gikuyu
kj Kuanyama;Kwanyama|kk Kazakh|kl Kalaallisut;Greenlandic|km Khmer;Central Khmer
kn Kannada|ko Korean|kr Kanuri|ks Kashmiri|ku Kurdish|kv Komi|kw Cornish|ky Kyrgyz;Kirghiz
la Latin|lb Luxembourgish;Letzeburgesch|lg Ganda;Luganda|li Limburgish;Limburgan;Limburger
ln Lingala|lo Lao|lt Lithuanian|lu Luba-Katanga|lv Latvian|mg Malagasy|mh Marshallese
mi Maori|mk Macedonian|ml Malayalam|mn Mongolian|mr Marathi|ms Malay|mt Maltese|my Burmese
na Nauru|nb Norwegian Bokmål;Bokmål|nd North Ndebele|ne Nepali|ng Ndonga|nl Dutch;Flemish
nn Norwegian Nynorsk;Nynorsk|no Norwegian|nr South Ndebele|nv Navajo;Navaho
ny Chichewa;Chewa;Nyanja|oc Occitan|oj Ojibwa;Ojibwe|om Oromo|or Oriya;Odia
os Ossetian;Ossetic|pa Punjabi;Panjabi|pi Pali|pl Polish|ps Pashto;Pushto|pt Portuguese
qu Quechua|rm Romansh|rn Rundi;Kirundi|ro Romanian;Moldavian;Moldovan|ru Russian
rw Kinyarwanda|sa Sanskrit|sc Sardinian|sd Sindhi|se Northern Sami|sg Sango
si Sinhala;Sinhalese|sk Slovak|sl Slovenian;Slovene|sm Samoan|sn Shona|so Somali
sq Albanian|sr Serbian|ss Swati;Swazi|st Southern Sotho;Sesotho|su Sundanese|sv Swedish
sw Swahili|ta Tamil|te Telugu|tg Tajik|th Thai|ti Tigrinya|tk Turkmen|tl Tagalog
tn Tswana|to Tongan;Tonga|tr Turkish|ts Tsonga|tt Tatar|tw Twi|ty Tahitian|ug Uyghur;Uighur
uk Ukrainian|ur Urdu|uz Uzbek|ve Venda|vi Vietnamese|vo Volapük|wa Walloon|wo Wolof
xh Xhosa|yi Yiddish|yo Yoruba|za Zhuang;Chuang|zh Chinese;Mandarin|zu Zulu
"""
# Withdrawn codes that old systems (Java's Locale, for one) still write.
_RETIRED_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro", "sh": "sr"}


def _parse_languages() -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for entry in re.split(r"[|\n]", _ISO_639_1.strip()):
        code, _, alternatives = entry.partition(" ")
        names[code] = alternatives.split(";")[0]
        for name in alternatives.split(";"):
            by_name[normalise(name)] = code
    return names, by_name


LANGUAGE_NAMES, _LANGUAGE_BY_NAME = _parse_languages()
_LANGUAGE_TAG = re.compile(r"([a-z]{2})(?:[-_][a-z0-9]{1,8})*")

# Free webmail domains, most used first (a tie suggests the earlier one). Also
# the whitelist: real domains an edit away from another (mail.com, ymail.com).
_PROVIDERS = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "protonmail.com",
    "proton.me",
    "pm.me",
    "gmx.com",
    "gmx.net",
    "gmx.de",
    "gmx.at",
    "gmx.ch",
    "gmx.fr",
    "web.de",
    "t-online.de",
    "freenet.de",
    "orange.fr",
    "wanadoo.fr",
    "free.fr",
    "sfr.fr",
    "laposte.net",
    "hotmail.fr",
    "hotmail.co.uk",
    "hotmail.de",
    "hotmail.it",
    "hotmail.es",
    "outlook.fr",
    "outlook.de",
    "live.fr",
    "live.co.uk",
    "yahoo.fr",
    "yahoo.co.uk",
    "yahoo.de",
    "yahoo.es",
    "yahoo.it",
    "libero.it",
    "mail.com",
    "email.com",
    "zoho.com",
    "yandex.ru",
    "mail.ru",
)
_PROVIDER_SET = frozenset(_PROVIDERS)
_TLD_TYPOS = {
    **dict.fromkeys(("con", "cmo", "ocm", "co", "cm", "om", "comm", "vom", "xom", "cim", "cpm"), "com"),
    **dict.fromkeys(("nte", "ent", "ner", "met"), "net"),
    "rf": "fr",
    "ed": "de",
}
# RFC 5321 limits, which the library enforces on its full path.
_MAX_LOCAL_PART, _MAX_ADDRESS = 64, 254
_ASCII_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PARENTHESES = re.compile(r"\([^()]*\)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HARMLESS_AFTER_SIGN = re.compile(r"[0-9\s.,()/%:+-]*")


@dataclass(frozen=True)
class Problem:
    """One error or warning about one cell, as the review and error file show it."""

    row: int
    column: str
    value: str
    message: str


@dataclass(frozen=True)
class CleanRow:
    """A row that passed every check, its values ready to store."""

    email: str
    fields: dict[str, object]


@dataclass(frozen=True)
class RowResult:
    """The outcome for one row: a clean row when there is no error, and every problem."""

    row: CleanRow | None
    errors: list[Problem]
    warnings: list[Problem]


def team_key(name: str) -> str:
    """The identity of a team: lower-cased with all whitespace removed.

    Paired with the SQL ``lower(regexp_replace(name, '\\s', '', 'g'))`` that the
    set-based checks use; keep the two in step. They agree on every team name
    `validate_row` produces, whose only whitespace is U+0020, on a database
    whose LC_CTYPE is a UTF-8 locale (checked against C.UTF-8; in the plain C
    locale PostgreSQL lowers ASCII only). Letters are lowered one by one with
    their simple mapping, as PostgreSQL does, not with ``str.lower``'s context
    rules (final sigma) or expansions (``İ`` → ``i̇``).
    """
    return "".join(char.lower()[0] for char in "".join(name.split()))


def _osa_distance(a: str, b: str) -> int:
    """Levenshtein distance counting a swap of neighbours as one edit."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


@lru_cache(maxsize=4096)
def email_domain_typo(domain: str) -> str | None:
    """The well-known webmail domain ``domain`` is probably a typo of, or None.

    ``gmial.com`` → ``gmail.com``; ``gmail.con`` → ``gmail.com``. The suffix
    must be the provider's own or a typo of it from a fixed list, so real
    country variants (``hotmail.be``) pass. The provider's name may be off by a
    swap, insertion, deletion or substitution: up to two for names of seven
    letters or more (hotmail, outlook), one for five or six (gmail, yahoo), none
    for shorter ones (aol, msn, gmx), which real companies sit one edit away
    from (aon.com, man.com). Cached: a file repeats a few domains many times.
    """
    domain = domain.strip().lower().rstrip(".")
    if domain in _PROVIDER_SET:
        return None
    name, _, suffix = domain.partition(".")
    suffix = _TLD_TYPOS.get(suffix, suffix)
    best, best_distance = None, 3
    for provider in _PROVIDERS:
        provider_name, _, provider_suffix = provider.partition(".")
        allowed = 2 if len(provider_name) >= 7 else 1 if len(provider_name) >= 5 else 0
        if suffix != provider_suffix or abs(len(provider_name) - len(name)) > allowed:
            continue
        distance = _osa_distance(name, provider_name)
        if distance <= allowed and distance < best_distance:
            best, best_distance = provider, distance
    return best


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet opening this cell would run it as a formula.

    Leading whitespace is ignored (tab and CR are the classic injection
    prefixes; spreadsheets that trim on import expose the rest). The cell is a
    formula when it then starts with ``=`` or ``@``, or with ``+`` or ``-``
    followed by anything but digits, spaces and ``. , ( ) / % : + -``: those
    cannot name a function or a cell, so ``-5`` and ``+33 1 23 45 67 89`` are data.
    """
    text = value.lstrip()
    if not text:
        return False
    if text[0] in "=@":
        return True
    return text[0] in "+-" and _HARMLESS_AFTER_SIGN.fullmatch(text, 1) is None


def neutralise_formula(value: str) -> str:
    """``value`` with a leading ``'`` when it looks like a formula, for any CSV we write."""
    return f"'{value}" if looks_like_formula(value) else value


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a message: control characters escaped, long text cut."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """The normalised and ASCII forms of ``domain``, or None when it is not valid."""
    try:
        result = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain


def _normalised_email(text: str) -> str:
    """The library's normalised form of ``text``; raises `EmailNotValidError`.

    Checking a domain costs three quarters of a row's time and a file repeats a
    few domains, so an address with a plain ASCII local part reuses its domain's
    cached result; anything else (and every error) goes through the full check.
    """
    local, _, domain = text.rpartition("@")
    if len(local) <= _MAX_LOCAL_PART and _ASCII_LOCAL_PART.fullmatch(local):
        checked = _checked_domain(domain)
        if checked is not None and len(local) + 1 + len(checked[1]) <= _MAX_ADDRESS:
            return f"{local}@{checked[0]}"
    return validate_email(text, check_deliverability=False, allow_smtputf8=True).normalized


def _reason(error: EmailNotValidError) -> str:
    text = str(error).rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


class _RowChecker:
    """Collects the problems of one row, in file column order, while cells are cleaned."""

    def __init__(self, line: int, cells: list[str], mapping: ColumnMapping) -> None:
        self.line, self.cells, self.mapping = line, cells, mapping
        self.errors: list[tuple[int, Problem]] = []
        self.warnings: list[tuple[int, Problem]] = []

    def raw(self, field: str) -> str:
        index = self.mapping.fields.get(field)
        return self.cells[index] if index is not None and index < len(self.cells) else ""

    def _problem(self, field: str, message: str) -> tuple[int, Problem]:
        problem = Problem(self.line, self.mapping.header_of(field), self.raw(field), message)
        return self.mapping.fields.get(field, -1), problem

    def error(self, field: str, message: str) -> None:
        self.errors.append(self._problem(field, message))

    def warn(self, field: str, message: str) -> None:
        self.warnings.append(self._problem(field, message))

    def text(self, field: str, *, required: bool = False, collapse: bool = False) -> str | None:
        """The trimmed text, or None; NFC, so text from macOS compares equal."""
        header, value = self.mapping.header_of(field), self.raw(field)
        text = unicodedata.normalize("NFC", value.strip())
        if not text:
            if required and field not in self.mapping.fields:
                self.error(field, f"the file has no {header} column; add one")
            elif required:
                self.error(field, f"{header} is required but blank; fill it in")
            return None
        if (control := _CONTROL.search(text)) is not None:
            if control.group() in "\r\n":
                self.error(field, f"{_shown(value)} contains a line break; {header} must be on one line")
            else:
                self.error(
                    field,
                    f"{_shown(value)} contains a control character (U+{ord(control.group()):04X}); remove it",
                )
            return None
        if collapse:
            text = " ".join(text.split())
        if len(text) > (limit := FIELDS_BY_NAME[field].max_length):
            self.error(
                field, f"{_shown(value)} is {len(text)} characters long; {header} allows at most {limit}"
            )
            return None
        return text


def _check_email(check: _RowChecker) -> str | None:
    text = check.text("email", required=True)
    if text is None:
        return None
    try:
        email = _normalised_email(text).lower()
    except EmailNotValidError as error:
        check.error("email", f"{_shown(text)} is not a valid e-mail address: {_reason(error)}")
        return None
    local, _, domain = email.rpartition("@")
    if (suggestion := email_domain_typo(domain)) is not None:
        check.warn(
            "email",
            f"{_shown(text)}: did you mean '{local}@{suggestion}'? "
            f"'{domain}' looks like a typo of '{suggestion}'",
        )
    return email


def _check_secondary_teams(check: _RowChecker, primary: object) -> list[str]:
    text = check.text("secondary_teams")
    seen = {team_key(primary)} if isinstance(primary, str) else set()
    teams: list[str] = []
    limit = FIELDS_BY_NAME["primary_team"].max_length
    for part in (text or "").split(SECONDARY_TEAM_SEPARATOR):
        team = " ".join(part.split())
        if len(team) > limit:
            check.error(
                "secondary_teams",
                f"the team {_shown(team)} is {len(team)} characters long; a team name allows at most {limit}",
            )
        elif team and team_key(team) not in seen:
            seen.add(team_key(team))
            teams.append(team)
    return teams


def _check_role(check: _RowChecker) -> str:
    role = check.raw("role").strip().casefold()
    if not role or role in ROLES:
        return role or DEFAULT_ROLE
    allowed = ", ".join(r.capitalize() for r in ROLES[:-1]) + f" or {ROLES[-1].capitalize()}"
    check.error(
        "role",
        f"{_shown(check.raw('role'))} is not a role; use {allowed}, "
        f"or leave it blank for {DEFAULT_ROLE.capitalize()}",
    )
    return DEFAULT_ROLE


def _check_language(check: _RowChecker) -> str | None:
    text = check.raw("language").strip()
    if not text:
        return None
    if (tag := _LANGUAGE_TAG.fullmatch(text.lower())) is not None:
        code = _RETIRED_CODES.get(tag.group(1), tag.group(1))
        if code in LANGUAGE_NAMES:
            return code
    # "English (United States)", as HR systems write it, names English.
    if (named := _LANGUAGE_BY_NAME.get(normalise(_PARENTHESES.sub("", text)))) is not None:
        return named
    check.error(
        "language",
        f"{_shown(text)} is not a language we know; use an ISO 639-1 "
        "code such as 'fr' or an English name such as 'French', or leave it "
        "blank for the tenant's default",
    )
    return None


def validate_row(line: int, cells: list[str], mapping: ColumnMapping) -> RowResult:
    """Check one data row; ``line`` is the row number a spreadsheet shows.

    Every problem of the row is listed, in the file's column order. ``row`` is
    None when there is any error. Required fields are checked even when their
    column is missing (the review refuses such a file anyway); other fields are
    in ``CleanRow.fields`` only when the file has their column.
    """
    check = _RowChecker(line, cells, mapping)
    email = _check_email(check)
    values: dict[str, object] = {
        "first_name": check.text("first_name", required=True),
        "last_name": check.text("last_name", required=True),
        "job_title": check.text("job_title"),
        "primary_team": check.text("primary_team", collapse=True),
        "role": _check_role(check),
        "language": _check_language(check),
        "location": check.text("location"),
    }
    values["secondary_teams"] = _check_secondary_teams(check, values["primary_team"])
    for field, index in mapping.fields.items():
        if index < len(cells) and looks_like_formula(cells[index]):
            check.warn(
                field,
                f"{_shown(cells[index])} starts like a spreadsheet formula; "
                "it is stored as text, check that it is what you meant",
            )
    errors = [problem for _, problem in sorted(check.errors, key=lambda pair: pair[0])]
    warnings = [problem for _, problem in sorted(check.warnings, key=lambda pair: pair[0])]
    present = {field: value for field, value in values.items() if field in mapping.fields}
    row = CleanRow(email, present) if email is not None and not errors else None
    return RowResult(row, errors, warnings)
