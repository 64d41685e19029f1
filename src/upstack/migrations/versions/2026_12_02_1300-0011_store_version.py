"""store_tenants.version: bumped by every transaction that changes a tenant's profile store, so that a reader
of several statements (an export's component map) can tell that it saw one state

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 13:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('store_tenants') as batch:
        batch.add_column(sa.Column('version', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('store_tenants') as batch:
        batch.drop_column('version')
