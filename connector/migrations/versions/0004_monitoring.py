"""monitoring: alert rule settings, alert lifecycle columns, the KPI index

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.models

revision = '0004'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_rules',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('min_volume', sa.Integer(), nullable=True),
    sa.Column('updated_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'rule')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        # Existing alerts (hash mismatches, disabled hooks) keep open_key NULL: they are one-off.
        batch_op.add_column(sa.Column('open_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('subject', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('severity', sa.String(length=20), server_default='warning', nullable=False))
        batch_op.add_column(sa.Column('value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('threshold', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('details', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('last_seen_at', connector.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('clear_since', connector.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', connector.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint('uq_alert_open_key', ['open_key'])

    with op.batch_alter_table('letters', schema=None) as batch_op:
        # Covering index of the KPI queries (connector.monitoring.models.KPI_INDEX).
        batch_op.create_index('ix_letters_kpi', ['account_id', 'created_at', 'status', 'deposited_at',
                                                 'completed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index('ix_letters_kpi')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alert_open_key', type_='unique')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('clear_since')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('details')
        batch_op.drop_column('threshold')
        batch_op.drop_column('value')
        batch_op.drop_column('severity')
        batch_op.drop_column('subject')
        batch_op.drop_column('open_key')

    op.drop_table('alert_rules')
