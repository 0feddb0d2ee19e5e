"""stories and aliases: items.story_id, items.copy_of, items.story_signature; urls.alias_of

A story's id is the id of the item that started it, so no table of its own is needed: its items,
first source and first publication are read from ``items`` (indexed by story_id).
``story_signature`` is what workers/stories.py compares (JSON of ``Signature.to_dict``).
``urls.alias_of`` marks a URL whose page turned out to be an item already stored from another URL
(the page's own canonical link pointed there).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('story_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('copy_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('story_signature', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.create_index(batch_op.f('ix_items_story_id'), ['story_id'], unique=False)
        batch_op.create_foreign_key('fk_items_copy_of_items', 'items', ['copy_of'], ['id'])

    with op.batch_alter_table('urls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alias_of', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_urls_alias_of_items', 'items', ['alias_of'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('urls', schema=None) as batch_op:
        batch_op.drop_constraint('fk_urls_alias_of_items', type_='foreignkey')
        batch_op.drop_column('alias_of')

    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_constraint('fk_items_copy_of_items', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_items_story_id'))
        batch_op.drop_column('story_signature')
        batch_op.drop_column('copy_of')
        batch_op.drop_column('story_id')
