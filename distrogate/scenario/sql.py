"""The roll-forward database's SQL: the database in the scenario's locale, the tables with text
indexes in that locale, the initial data, the client load's INSERT and the read-back.

Two tables:

``dg_writes``
    One row per write of the client load (:mod:`distrogate.scenario.writer`): ``key`` is the
    write's unique id (the history's op id), ``value`` a text in the database's collation with
    an index on it, so that every write goes through a B-tree ordered by that collation.
``dg_data``
    The initial rows (``data.rows``): names and labels made of :data:`WORDS`, with an index
    on ``name`` and a unique index on ``label``: the indexes a changed collation corrupts.

The words mix accents, ligatures, hyphens, spaces, punctuation and case, whose relative order
differs between locales (``C`` against ``en_US``) and between glibc versions.

Every statement is a plain string that runs as well through a driver as through ``psql -c``.
"""

from __future__ import annotations

WORDS: tuple[str, ...] = (
    "cote", "côte", "coté", "côté", "Cote", "COTE", "co-op", "coop", "Co-Op", "co op",
    "resume", "résumé", "Résumé", "re-sume", "naive", "naïve", "Naïve", "Ångström", "angstrom",
    "Zürich", "zurich", "Zurich", "straße", "strasse", "Straße", "œuvre", "oeuvre", "Œuvre",
    "æsir", "aesir", "Æsir", "élan", "Elan", "elan", "a-b", "a b", "ab", "a_b", "Ab", "AB",
    "ä", "ae", "Ä", "o", "ø", "Ö", "ö", "z", "Z", "ǆ", "dz", "ﬁle", "file", "1a", "a1",
    "İstanbul", "istanbul", "ıi", "Ii", "ñandú", "nandu", "Ñ", "x-ray", "xray", "X-Ray",
)

TABLES = ("dg_writes", "dg_data")

INSERT_WRITE = "INSERT INTO dg_writes (key, writer, value) VALUES (%s, %s, %s)"
"""The client load's write (psycopg placeholders: key, writer, value)."""

READ_KEYS = "SELECT key FROM dg_writes"
"""Every write's key, one row each; run it under :data:`SEQSCAN_OPTIONS` so that the heap is
read, not the primary key's index: a key in two live heap tuples then shows twice."""

SEQSCAN_OPTIONS = "-c enable_indexscan=off -c enable_indexonlyscan=off -c enable_bitmapscan=off"
"""Session settings (libpq ``options``, or ``PGOPTIONS``) that keep indexes out of a read."""


def literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def create_database(name: str, locale: str) -> str:
    """``CREATE DATABASE`` for ``name`` in ``locale`` (collation and ctype; UTF-8, from
    template0 so that the locale may differ from the cluster's)."""
    return (f"CREATE DATABASE {identifier(name)} TEMPLATE template0 ENCODING 'UTF8' "
            f"LOCALE {literal(locale)}")


def schema(text_index: bool = True) -> tuple[str, ...]:
    """The tables (and, with ``text_index``, their text indexes), in order; each statement
    may run again (``IF NOT EXISTS``). Text columns take the database's collation."""
    statements = [
        "CREATE TABLE IF NOT EXISTS dg_writes (key bigint PRIMARY KEY, writer integer NOT NULL, "
        'value text COLLATE "default" NOT NULL, written_at timestamptz NOT NULL '
        "DEFAULT clock_timestamp())",
        "CREATE TABLE IF NOT EXISTS dg_data (id bigint PRIMARY KEY, "
        'name text COLLATE "default" NOT NULL, label text COLLATE "default" NOT NULL)',
    ]
    if text_index:
        statements += [
            "CREATE INDEX IF NOT EXISTS dg_writes_value ON dg_writes (value)",
            "CREATE INDEX IF NOT EXISTS dg_data_name ON dg_data (name)",
            "CREATE UNIQUE INDEX IF NOT EXISTS dg_data_label ON dg_data (label)",
        ]
    return tuple(statements)


def seed(rows: int) -> str:
    """The initial ``rows`` rows of ``dg_data`` (deterministic; names of two words, labels
    unique), inserted once (a second run adds nothing)."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be a whole number >= 0, got {rows!r}")
    words = "ARRAY[" + ", ".join(literal(w) for w in WORDS) + "]::text[]"
    n = len(WORDS)
    return (
        "INSERT INTO dg_data (id, name, label) "
        f"SELECT i, w[1 + (i * 7) % {n}] || ' ' || w[1 + (i * 13 + i / {n}) % {n}], "
        f"w[1 + i % {n}] || '-' || i "
        f"FROM generate_series(1, {rows}) AS i, (SELECT {words} AS w) AS words "
        "ON CONFLICT (id) DO NOTHING"
    )


def value_for(key: int) -> str:
    """The text the client load writes with ``key``: a word of :data:`WORDS` and the key."""
    return f"{WORDS[key % len(WORDS)]}-{key}"
