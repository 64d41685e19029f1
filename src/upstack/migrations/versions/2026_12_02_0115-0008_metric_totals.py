"""metric_totals: cumulative totals of GET /_upstack/metrics (job runs by duration bucket, records ingested,
profiles exported), shared by every process through the database

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:15:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'metric_totals',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.Column('sum_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'kind', 'outcome', 'bucket', name=op.f('pk_metric_totals')),
    )


def downgrade() -> None:
    op.drop_table('metric_totals')
