"""Webmail domains, and the typos of them an admin's file is full of.

`email_domain_typo` names the provider a misspelt domain (``gmial.com``,
``hotmail.con``) most likely meant; the review warns with it, and its list of
providers tells the tenant's usual domain from a personal address.
"""

from __future__ import annotations

from functools import lru_cache

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
PROVIDER_SET = frozenset(_PROVIDERS)
_TLD_TYPOS = {
    **dict.fromkeys(("con", "cmo", "ocm", "co", "cm", "om", "comm", "vom", "xom", "cim", "cpm"), "com"),
    **dict.fromkeys(("nte", "ent", "ner", "met"), "net"),
    "rf": "fr",
    "ed": "de",
}


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
    if domain in PROVIDER_SET:
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
