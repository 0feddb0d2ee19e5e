"""site_lines: each site's candidate boilerplate lines, one row per distinct article

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import workers.storage.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('site_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=16), nullable=False),
    sa.Column('url_hash', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('seen_at', workers.storage.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('site_lines', schema=None) as batch_op:
        batch_op.create_index('ux_site_lines_site_fingerprint_url', ['site', 'fingerprint', 'url_hash'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('site_lines', schema=None) as batch_op:
        batch_op.drop_index('ux_site_lines_site_fingerprint_url')

    op.drop_table('site_lines')
