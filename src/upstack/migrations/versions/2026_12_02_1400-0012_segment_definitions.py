"""segment_definitions: PQL segment definitions per tenant (/data/core/ups/segment/definitions), name unique per tenant

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'segment_definitions',
        sa.Column('org', sa.String(length=255), nullable=False),
        sa.Column('sandbox', sa.String(length=255), nullable=False),
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=512), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('batch', sa.Boolean(), nullable=False),
        sa.Column('continuous', sa.Boolean(), nullable=False),
        sa.Column('synchronous', sa.Boolean(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('org', 'sandbox', 'id', name=op.f('pk_segment_definitions')),
        sa.UniqueConstraint('org', 'sandbox', 'name', name='uq_segment_definitions_name'),
    )


def downgrade() -> None:
    op.drop_table('segment_definitions')
