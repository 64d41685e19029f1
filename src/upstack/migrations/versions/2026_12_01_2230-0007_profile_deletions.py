"""profile_deletions: profiles deleted through DELETE /data/core/ups/access/entities (per tenant, identity, time)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'profile_deletions',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('org', sa.String(length=255), nullable=False),
        sa.Column('sandbox', sa.String(length=255), nullable=False),
        sa.Column('namespace', sa.Text(), nullable=False),
        sa.Column('identity', sa.Text(), nullable=False),
        sa.Column('deleted_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_profile_deletions')),
    )
    op.create_index('ix_profile_deletions_tenant', 'profile_deletions', ['org', 'sandbox'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_profile_deletions_tenant', table_name='profile_deletions')
    op.drop_table('profile_deletions')
