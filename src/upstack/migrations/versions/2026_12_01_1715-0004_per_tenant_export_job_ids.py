"""export job ids numbered per tenant: export_jobs keyed by (org, sandbox, id), one id counter per tenant

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:15:00

Jobs made under the one global counter keep their ids (unique anyway) in their own tenant, so every id a client
holds still reads the same job; each tenant's counter starts at its own largest id, so its next job follows it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "export_job_counters",
        sa.Column("org", sa.String(length=255), nullable=False),
        sa.Column("sandbox", sa.String(length=255), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org", "sandbox", name=op.f("pk_export_job_counters")),
    )
    op.execute("INSERT INTO export_job_counters (org, sandbox, last_id) "
               "SELECT org, sandbox, MAX(id) FROM export_jobs GROUP BY org, sandbox")
    if _postgres():
        # The id was a BIGSERIAL; ids now come from the counters, and a default left behind would hand out
        # ids that collide with them.
        op.execute("ALTER TABLE export_jobs ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS export_jobs_id_seq")
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_constraint("pk_export_jobs", type_="primary")
        batch.create_primary_key("pk_export_jobs", ["org", "sandbox", "id"])
    with op.batch_alter_table("batches") as batch:
        batch.create_index("ix_batches_export_job", ["org", "sandbox", "export_job_id"], unique=False)


def downgrade() -> None:
    # Going back needs ids unique across tenants again; jobs numbered per tenant since the upgrade may share
    # one, and renumbering would break the ids clients hold. Refuse rather than lose a job.
    shared = op.get_bind().execute(sa.text(
        "SELECT id FROM export_jobs GROUP BY id HAVING COUNT(*) > 1 ORDER BY id LIMIT 1")).first()
    if shared is not None:
        raise RuntimeError(f"Cannot downgrade: export job id {shared[0]} is used by more than one tenant.")
    with op.batch_alter_table("batches") as batch:
        batch.drop_index("ix_batches_export_job")
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_constraint("pk_export_jobs", type_="primary")
        batch.create_primary_key("pk_export_jobs", ["id"])
    if _postgres():
        op.execute("CREATE SEQUENCE export_jobs_id_seq OWNED BY export_jobs.id")
        op.execute("SELECT setval('export_jobs_id_seq', COALESCE((SELECT MAX(id) FROM export_jobs), 0) + 1, false)")
        op.execute("ALTER TABLE export_jobs ALTER COLUMN id SET DEFAULT nextval('export_jobs_id_seq')")
    op.drop_table("export_job_counters")
