"""profile store: per-tenant identity graph (store_identities) and fragment index (store_files, store_records)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'store_tenants',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('org', sa.String(length=255), nullable=False),
        sa.Column('sandbox', sa.String(length=255), nullable=False),
        sa.Column('next_component', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_store_tenants')),
    )
    op.create_index('ix_store_tenants_tenant', 'store_tenants', ['org', 'sandbox'], unique=True)
    op.create_table(
        'store_batches',
        sa.Column('batch_id', sa.String(length=64), nullable=False),
        sa.Column('tenant_id', sa.BigInteger(), nullable=False),
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('records', sa.BigInteger(), nullable=False),
        sa.Column('indexed', sa.BigInteger(), nullable=False),
        sa.Column('done', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_store_batches')),
    )
    op.create_index('ix_store_batches_tenant', 'store_batches', ['tenant_id'], unique=False)
    op.create_table(
        'store_files',
        sa.Column('id', BigId, autoincrement=True, nullable=False),
        sa.Column('tenant_id', sa.BigInteger(), nullable=False),
        sa.Column('batch_id', sa.String(length=64), nullable=False),
        sa.Column('dataset_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('relpath', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_store_files')),
    )
    op.create_index('ix_store_files_batch', 'store_files', ['batch_id'], unique=False)
    op.create_table(
        'store_identities',
        sa.Column('tenant_id', sa.BigInteger(), nullable=False),
        sa.Column('namespace', sa.Text(), nullable=False),
        sa.Column('identity', sa.Text(), nullable=False),
        sa.Column('component', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'namespace', 'identity', name=op.f('pk_store_identities')),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_store_identities_component', 'store_identities', ['tenant_id', 'component'], unique=False)
    op.create_table(
        'store_records',
        sa.Column('file_id', sa.BigInteger(), nullable=False),
        sa.Column('row', sa.BigInteger(), nullable=False),
        sa.Column('tenant_id', sa.BigInteger(), nullable=False),
        sa.Column('component', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('file_id', 'row', name=op.f('pk_store_records')),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_store_records_component', 'store_records', ['tenant_id', 'component'], unique=False)


def downgrade() -> None:
    for table, index in (('store_records', 'ix_store_records_component'),
                         ('store_identities', 'ix_store_identities_component'),
                         ('store_files', 'ix_store_files_batch'), ('store_batches', 'ix_store_batches_tenant'),
                         ('store_tenants', 'ix_store_tenants_tenant')):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
