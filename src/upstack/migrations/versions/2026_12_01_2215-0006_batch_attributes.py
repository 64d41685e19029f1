"""batches.attributes: what a client set through Catalog's batch writes (externalId, tags, replay, ...)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('batches') as batch:
        batch.add_column(sa.Column('attributes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('batches') as batch:
        batch.drop_column('attributes')
