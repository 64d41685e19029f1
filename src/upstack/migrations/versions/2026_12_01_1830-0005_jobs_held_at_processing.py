"""jobs.hold: a job that manual pacing holds once it runs (at PROCESSING), until released

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('hold', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('hold')
