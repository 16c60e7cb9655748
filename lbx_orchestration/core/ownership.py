"""Who may change a member: the one who first imported that username, or the operator.

The web is the only door strangers reach, so it is the only one that asks. The first web upload
of a name that lbx does not know creates the member and issues a **member key**: returned once,
kept by the page in an HttpOnly cookie, stored here only as a SHA-256 hash. Every later web
upload for that name (whatever its case) must present it. Members created by the operator (the
CLI, the inbox, the bundled exports) have no key until the operator issues one
(`lbx member key NAME`), which also replaces a lost key. The CLI and the inbox are the
operator's doors and need no key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

import duckdb
import polars as pl

from lbx_orchestration.core.letterboxd.usernames import canonical_username
from lbx_orchestration.core.tables import EXPORT_IMPORTS, MEMBER_KEYS, REVIEWS
from lbx_orchestration.core.warehouse import replace_many, scalar, table_exists

KEY_SCHEMA = {"username": pl.Utf8(), "key_sha256": pl.Utf8(), "issued_at": pl.Datetime("us"), "issued_by": pl.Utf8()}
KEY_BYTES = 24  # 32 URL-safe characters


class NotOwner(PermissionError):
    """The request may not change this member (the message says how to get the key)."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lbxk_" + secrets.token_urlsafe(KEY_BYTES)


def stored_hash(con: duckdb.DuckDBPyConnection, username: str) -> str | None:
    if not table_exists(con, MEMBER_KEYS):
        return None
    return scalar(con, f"select key_sha256 from {MEMBER_KEYS} where username = ?", [canonical_username(username)])


def member_exists(con: duckdb.DuckDBPyConnection, username: str) -> bool:
    """Whether lbx holds anything of this member: an import, or observations (bundled export, RSS)."""
    name = canonical_username(username)
    if table_exists(con, EXPORT_IMPORTS) and scalar(
        con, f"select count(*) from {EXPORT_IMPORTS} where lower(username) = ?", [name]
    ):
        return True
    return bool(
        table_exists(con, REVIEWS)
        and con.execute(f"select 1 from {REVIEWS} where user_key = ? limit 1", [f"letterboxd:{name}"]).fetchall()
    )


def key_rows(username: str, key: str, issued_by: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "username": [canonical_username(username)],
            "key_sha256": [_hash(key)],
            "issued_at": [dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            "issued_by": [issued_by],
        },
        schema=KEY_SCHEMA,
    )


def issue_key(con: duckdb.DuckDBPyConnection, username: str, issued_by: str = "operator") -> str:
    """A new key for the member, replacing any earlier one (which stops working at once)."""
    key = new_key()
    name = canonical_username(username)
    replace_many(con, {MEMBER_KEYS: (key_rows(name, key, issued_by), {"username": [name]})})
    return key


@dataclass
class WebOwner:
    """The key a web request presented, checked against the member it would change.

    ``check`` runs before anything is written (and again inside the write, so two first uploads
    of one name cannot both create it); ``claim_rows`` gives the key row a new member's import
    writes in the same transaction, and ``issued`` the key to hand back once.
    """

    explicit: str | None = None  # a key typed or sent with the request, for whichever member
    cookies: dict[str, str] = field(default_factory=dict)  # username -> the key its cookie holds
    issued: str | None = None
    accepted: str | None = None
    _creates: bool = False

    def presented(self, name: str) -> str | None:
        return self.explicit or self.cookies.get(name)

    def check(self, con: duckdb.DuckDBPyConnection, username: str) -> None:
        name = canonical_username(username)
        stored = stored_hash(con, name)
        presented = self.presented(name)
        if stored is not None:
            if presented and hmac.compare_digest(stored, _hash(presented)):
                self._creates, self.accepted = False, presented
                return
            raise NotOwner(
                f"{name} is already a member of lbx and only they can change their data: this upload needs "
                f"their member key{' (the one sent is not it)' if presented else ''}. The page keeps the "
                "key in a cookie after the first upload; a lost key is replaced by the operator "
                f"(`lbx member key {name}`)."
            )
        if member_exists(con, name):
            raise NotOwner(
                f"{name} was added by the operator of this lbx (command line, inbox or bundled export), so "
                f"the web cannot change them without a member key: ask the operator for one "
                f"(`lbx member key {name}`) and send it with the upload."
            )
        self._creates = True

    def claim_rows(self, username: str) -> pl.DataFrame | None:
        if not self._creates:
            return None
        self.issued = new_key()
        return key_rows(username, self.issued, "web")
