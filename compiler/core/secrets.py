"""Masking secrets in anything skewless says: errors, logs, artifacts and HTTP bodies.

One function applied where text leaves the library (every SkewlessError's text, the online store's description),
so that a password never reaches an output however it was written: URL userinfo (even with an unencoded `#`,
`@` or `/` in it), `?password=`-style query parameters, and `password: ...`-style lines of a YAML snippet.
"""

from __future__ import annotations

import re

MASK = "***"
_SECRET_NAMES = r"(?:password|passwd|pwd|pass|secret|token|api_?key|access_?key|auth|credentials?)"

# scheme://userinfo@ — userinfo runs to the last '@' before whitespace or a quote (it may hold '#', '/', '@')
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^\s'\"]*)@(?=[^\s'\"@]*(?:[\s'\"]|$))")
_QUERY = re.compile(rf"(?P<key>[?&;]{_SECRET_NAMES}=)[^&\s'\"]*", re.IGNORECASE)
_ASSIGNMENT = re.compile(rf"(?P<key>\b[\w-]*{_SECRET_NAMES}[\w-]*\s*[:=]\s*)(?P<value>[^\s,&}}]+)", re.IGNORECASE)


def _userinfo(match: re.Match[str]) -> str:
    """user:password@ keeps the user; a bare token@ (some providers' form) is masked whole."""
    user, colon, _ = match.group("info").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if colon else f"{match.group('scheme')}{MASK}@"


def mask_secrets(text: str, assignments: bool = False) -> str:
    """The text with every credential it may hold replaced by ***. `assignments` also masks the value of any
    `password: ...` / `token=...` (for snippets of configuration files, not for prose)."""
    if not text:
        return text
    text = _QUERY.sub(lambda m: m.group("key") + MASK, text)  # first: a query password may hold an '@'
    text = _USERINFO.sub(_userinfo, text)
    if assignments:
        text = _ASSIGNMENT.sub(lambda m: m.group("key") + MASK, text)
    return text
