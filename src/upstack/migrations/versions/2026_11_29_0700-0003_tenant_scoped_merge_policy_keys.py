"""merge policies keyed by (org, sandbox, id): every tenant has its own timestampOrdered-none-mp

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 07:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions gain their tenant, taken from the policy they belong to.
    with op.batch_alter_table("merge_policy_versions") as batch:
        batch.add_column(sa.Column("org", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("sandbox", sa.String(length=255), nullable=True))
    op.execute(
        "UPDATE merge_policy_versions SET "
        "org = (SELECT p.org FROM merge_policies p WHERE p.id = merge_policy_versions.policy_id), "
        "sandbox = (SELECT p.sandbox FROM merge_policies p WHERE p.id = merge_policy_versions.policy_id)"
    )
    op.execute("DELETE FROM merge_policy_versions WHERE org IS NULL")
    with op.batch_alter_table("merge_policy_versions") as batch:
        batch.alter_column("org", existing_type=sa.String(length=255), nullable=False)
        batch.alter_column("sandbox", existing_type=sa.String(length=255), nullable=False)
        batch.drop_constraint("pk_merge_policy_versions", type_="primary")
        batch.create_primary_key("pk_merge_policy_versions", ["org", "sandbox", "policy_id", "version"])
    with op.batch_alter_table("merge_policies") as batch:
        batch.drop_index("ix_merge_policies_tenant")
        batch.drop_constraint("pk_merge_policies", type_="primary")
        batch.create_primary_key("pk_merge_policies", ["org", "sandbox", "id"])


def downgrade() -> None:
    with op.batch_alter_table("merge_policies") as batch:
        batch.drop_constraint("pk_merge_policies", type_="primary")
        batch.create_primary_key("pk_merge_policies", ["id"])
        batch.create_index("ix_merge_policies_tenant", ["org", "sandbox"])
    with op.batch_alter_table("merge_policy_versions") as batch:
        batch.drop_constraint("pk_merge_policy_versions", type_="primary")
        batch.create_primary_key("pk_merge_policy_versions", ["policy_id", "version"])
        batch.drop_column("sandbox")
        batch.drop_column("org")
