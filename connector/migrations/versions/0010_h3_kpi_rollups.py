"""KPI daily rollups (kpi_daily, kpi_delay_daily, letters.acceptance_delay_seconds, two indexes) and
server-side dashboard sessions

Revision ID: 0010_h3
Revises: 0009
Create Date: 2026-12-01

The rollups are filled for the letters that exist (connector.monitoring.rollups.rebuild, the same
code as ``lre-bridge kpis rebuild``); from then on the flush hooks keep them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.models

revision = '0010_h3'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kpi_daily',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('template_name', sa.String(length=100), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('deposit_day', sa.String(length=10), nullable=False),
    sa.Column('letters', sa.Integer(), nullable=False),
    sa.Column('delay_count', sa.Integer(), nullable=False),
    sa.Column('delay_sum_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'day', 'template_name', 'batch_id', 'status', 'deposit_day')
    )
    op.create_table('kpi_delay_daily',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('template_name', sa.String(length=100), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('letters', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'day', 'template_name', 'batch_id', 'bucket')
    )
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acceptance_delay_seconds', sa.Float(), nullable=True))
        batch_op.create_index('ix_letters_acceptance_delay', ['account_id', 'acceptance_delay_seconds', 'created_at',
                                                                       'template_name'],
                              unique=False)
        batch_op.create_index('ix_letters_account_deposited', ['account_id', 'deposited_at'], unique=False)
        # ix_letters_kpi (0004) also covers the delay and the template now: the KPIs' reads of letters stay in it.
        batch_op.drop_index('ix_letters_kpi')
        batch_op.create_index('ix_letters_kpi', ['account_id', 'created_at', 'status', 'deposited_at', 'completed_at',
                                                 'acceptance_delay_seconds', 'template_name'], unique=False)
    op.create_table('dashboard_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('api_key_id', sa.String(length=40), nullable=False),
    sa.Column('csrf', sa.String(length=64), nullable=False),
    sa.Column('created_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('dashboard_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_dashboard_sessions_api_key_id', ['api_key_id'], unique=False)
        batch_op.create_index('ix_dashboard_sessions_expires_at', ['expires_at'], unique=False)
    from connector.monitoring.rollups import rebuild
    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table('dashboard_sessions')
    with op.batch_alter_table('letters', schema=None) as batch_op:
        batch_op.drop_index('ix_letters_kpi')
        batch_op.create_index('ix_letters_kpi', ['account_id', 'created_at', 'status', 'deposited_at', 'completed_at'],
                              unique=False)
        batch_op.drop_index('ix_letters_account_deposited')
        batch_op.drop_index('ix_letters_acceptance_delay')
        batch_op.drop_column('acceptance_delay_seconds')
    op.drop_table('kpi_delay_daily')
    op.drop_table('kpi_daily')
