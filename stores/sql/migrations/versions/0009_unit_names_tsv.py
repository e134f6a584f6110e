"""PostgreSQL: a full-text index of the names a unit lists (persons and entities), for mention lookups.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

`UnitSearch.unit_ids_mentioning` took its candidates from the search text's index, which
also holds every name a unit's text merely mentions: at 10^6 units a name from a question
had about 10^5 candidates, each checked against its lists (about 280 ms a query,
`benchmarks/scale.py`). `names_tsv` holds only the listed names' words ('simple'
configuration: no stemming, no stop words; read through jsonb, whose text form keeps
non-ASCII letters where json's has \\u escapes), so the candidates are the units that
list a name with those words. SQLite keeps the phrase match on its FTS5 table (12 ms at
10^5 units).
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE memory_units ADD COLUMN names_tsv tsvector GENERATED ALWAYS AS "
        "(to_tsvector('simple', coalesce(persons::jsonb::text, '') || ' ' || coalesce(entities::jsonb::text, ''))) STORED"
    )
    op.execute("CREATE INDEX ix_units_names_tsv ON memory_units USING GIN (names_tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_units_names_tsv")
    op.execute("ALTER TABLE memory_units DROP COLUMN IF EXISTS names_tsv")
