"""item_search (and SQLite's search_fts) and api_tokens: full-text search and the API's bearer tokens

Items already stored are indexed here, with the same analyzer the store step uses for new items
(``workers.storage.search.reindex``; ``mirsad reindex`` runs it again after an analyzer change).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import workers.storage.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_search',
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=255), nullable=False),
    sa.Column('published', workers.storage.models.UTCDateTime(), nullable=False),
    sa.Column('vector', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('item_id')
    )
    with op.batch_alter_table('item_search', schema=None) as batch_op:
        batch_op.create_index('ix_item_search_published', ['published', 'item_id'], unique=False)
        batch_op.create_index('ix_item_search_site_published', ['site', 'published'], unique=False)
        batch_op.create_index('ix_item_search_vector', ['vector'], unique=False, postgresql_using='gin')

    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', workers.storage.models.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', workers.storage.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )

    if op.get_bind().dialect.name == 'sqlite':
        # Our analyzer makes the tokens; the ascii tokenizer only splits them at spaces.
        op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(surface, stems, tokenize='ascii')")
        op.execute("CREATE TRIGGER search_fts_item_deleted AFTER DELETE ON items "
                   "BEGIN DELETE FROM search_fts WHERE rowid = old.id; END")

    if op.get_bind().dialect.name == 'sqlite':  # PostgreSQL's rows need 0006's pairs column: 0006 indexes them
        from workers.storage.search import reindex
        reindex(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS search_fts_item_deleted")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table('api_tokens')
    with op.batch_alter_table('item_search', schema=None) as batch_op:
        batch_op.drop_index('ix_item_search_vector', postgresql_using='gin')
        batch_op.drop_index('ix_item_search_site_published')
        batch_op.drop_index('ix_item_search_published')
    op.drop_table('item_search')
