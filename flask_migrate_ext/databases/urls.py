"""Database URLs as they may be shown to a user: with every secret masked."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

#: Query parameters that carry a credential (``?password=...`` works with
#: libpq and several MySQL drivers), masked like the password itself.
_SECRET_WORDS = ("password", "passwd", "pwd", "secret", "token", "sslkey")


def masked(url: str | sa.URL | t.Any) -> str:
    """Render ``url`` with its password and secret query values as ``***``."""
    try:
        url = sa.make_url(url)
    except Exception:  # not a URL we can parse: show nothing of it
        return "<database URL>"
    secrets = {
        key: "***"
        for key in url.query
        if any(word in key.lower() for word in _SECRET_WORDS)
    }
    if secrets:
        url = url.update_query_dict(secrets)
    # render_as_string() quotes the query's "***" as %2A%2A%2A.
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
