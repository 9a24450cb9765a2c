"""consent collection: invitations, legal bases, the co-owners' paper register, each letter's basis

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.models

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None

_DT = connector.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('consent_invitations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', _DT, nullable=False),
    sa.Column('expires_at', _DT, nullable=False),
    sa.Column('email_sent_at', _DT, nullable=True),
    sa.Column('email_error', sa.Text(), nullable=True),
    sa.Column('answered_at', _DT, nullable=True),
    sa.Column('answer_ip', sa.String(length=64), nullable=True),
    sa.Column('answer_user_agent', sa.String(length=1000), nullable=True),
    sa.Column('text_version', sa.String(length=40), nullable=True),
    sa.Column('text_language', sa.String(length=5), nullable=True),
    sa.Column('text_sha256', sa.String(length=64), nullable=True),
    sa.Column('text_shown', sa.Text(), nullable=True),
    sa.Column('consent_id', sa.String(length=40), nullable=True),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=True),
    sa.Column('certificate_size', sa.Integer(), nullable=True),
    sa.Column('certificate_storage_key', sa.String(length=300), nullable=True),
    sa.Column('expired_at', _DT, nullable=True),
    sa.Column('withdrawn_at', _DT, nullable=True),
    sa.Column('withdrawal_ip', sa.String(length=64), nullable=True),
    sa.Column('withdrawal_user_agent', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_invitations_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_invitations_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_invitations_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_invitations_status'), ['status'], unique=False)

    op.create_table('consent_legal_bases',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('condominium', sa.Boolean(), nullable=False),
    sa.Column('condominium_enabled_at', _DT, nullable=True),
    sa.Column('condominium_enabled_by', sa.String(length=200), nullable=True),
    sa.Column('condominium_statement', sa.Text(), nullable=True),
    sa.Column('updated_at', _DT, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id')
    )

    op.create_table('condominium_paper_requests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=True),
    sa.Column('requested_at', _DT, nullable=False),
    sa.Column('received_via', sa.String(length=40), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', _DT, nullable=False),
    sa.Column('withdrawn_at', _DT, nullable=True),
    sa.Column('withdrawn_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('condominium_paper_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_condominium_paper_requests_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_condominium_paper_requests_email'), ['email'], unique=False)

    op.create_table('letter_legal_bases',
    sa.Column('letter_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=False),
    sa.Column('consent_id', sa.String(length=40), nullable=True),
    sa.Column('invitation_id', sa.String(length=40), nullable=True),
    sa.Column('hold_status', sa.String(length=20), nullable=True),
    sa.Column('checked_at', _DT, nullable=False),
    sa.Column('resolved_at', _DT, nullable=True),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], ),
    sa.PrimaryKeyConstraint('letter_id')
    )
    with op.batch_alter_table('letter_legal_bases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_legal_bases_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_letter_legal_bases_hold_status'), ['hold_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_letter_legal_bases_invitation_id'), ['invitation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('letter_legal_bases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_legal_bases_invitation_id'))
        batch_op.drop_index(batch_op.f('ix_letter_legal_bases_hold_status'))
        batch_op.drop_index(batch_op.f('ix_letter_legal_bases_account_id'))
    op.drop_table('letter_legal_bases')
    with op.batch_alter_table('condominium_paper_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_condominium_paper_requests_email'))
        batch_op.drop_index(batch_op.f('ix_condominium_paper_requests_account_id'))
    op.drop_table('condominium_paper_requests')
    op.drop_table('consent_legal_bases')
    with op.batch_alter_table('consent_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_invitations_status'))
        batch_op.drop_index(batch_op.f('ix_consent_invitations_email'))
        batch_op.drop_index(batch_op.f('ix_consent_invitations_consent_id'))
        batch_op.drop_index(batch_op.f('ix_consent_invitations_account_id'))
    op.drop_table('consent_invitations')
