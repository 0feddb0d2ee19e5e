"""item_search.pairs: adjacent word pairs, GIN-indexed, so that phrase searches on PostgreSQL read few vectors

Checking a phrase needs each candidate's vector (read from TOAST and uncompressed): with the pairs
index only the items having every pair of the phrase are candidates. Items already stored get their
pairs here (``workers.storage.search.reindex``); SQLite's FTS5 index checks phrases itself.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('item_search', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pairs', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True))
        batch_op.create_index('ix_item_search_pairs', ['pairs'], unique=False, postgresql_using='gin')

    if op.get_bind().dialect.name == 'postgresql':
        from workers.storage.search import reindex
        reindex(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table('item_search', schema=None) as batch_op:
        batch_op.drop_index('ix_item_search_pairs', postgresql_using='gin')
        batch_op.drop_column('pairs')
