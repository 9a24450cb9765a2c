"""queue: job lanes and the indexes of the hot queue queries

Revision ID: 0007
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0002'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    # Nullable: jobs queued before this revision have no lane (no per-destination limit).
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lane', sa.String(length=80), nullable=True))
    # Partial indexes replace (status, run_at): the claim and the due-time wake-up only ever read
    # pending or running jobs, while done ones accumulate.
    op.drop_index('ix_jobs_due', table_name='jobs')
    op.create_index('ix_jobs_pending_due', 'jobs', ['run_at', 'id'], postgresql_where=PENDING,
                    sqlite_where=PENDING)
    op.create_index('ix_jobs_running_lease', 'jobs', ['lease_until'], postgresql_where=RUNNING,
                    sqlite_where=RUNNING)
    op.create_index('ix_deliveries_pending_order', 'deliveries', ['hook_id', 'letter_id', 'event_seq'],
                    postgresql_where=PENDING, sqlite_where=PENDING)
    # (account_id, seq) serves what (account_id) did, and the feed's order too.
    op.create_index('ix_events_account_seq', 'events', ['account_id', 'seq'])
    op.drop_index('ix_events_account_id', table_name='events')


def downgrade() -> None:
    op.create_index('ix_events_account_id', 'events', ['account_id'])
    op.drop_index('ix_events_account_seq', table_name='events')
    op.drop_index('ix_deliveries_pending_order', table_name='deliveries')
    op.drop_index('ix_jobs_running_lease', table_name='jobs')
    op.drop_index('ix_jobs_pending_due', table_name='jobs')
    op.create_index('ix_jobs_due', 'jobs', ['status', 'run_at'])
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('lane')
