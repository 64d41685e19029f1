"""workers.lanes: the job lanes a worker claims from (user, background), shown by GET /_upstack/health

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 07:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workers') as batch:
        batch.add_column(sa.Column('lanes', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workers') as batch:
        batch.drop_column('lanes')
