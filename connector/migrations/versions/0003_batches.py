"""batches: a batch, its common documents, and one item per row

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'batches',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('template_name', sa.String(length=100), nullable=True),
        sa.Column('template_version', sa.Integer(), nullable=True),
        sa.Column('template_origin', sa.String(length=10), nullable=True),
        sa.Column('common_data', sa.JSON(), nullable=False),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('reference', sa.String(length=200), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('sandbox_outcome', sa.String(length=20), nullable=True),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('created_at', connector.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', connector.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('cancel_requested_at', connector.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('completed_at', connector.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_batches_account_id'), 'batches', ['account_id'], unique=False)
    op.create_index(op.f('ix_batches_created_at'), 'batches', ['created_at'], unique=False)
    op.create_table(
        'batch_documents',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('storage_key', sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('batch_id', 'position'),
    )
    op.create_index(op.f('ix_batch_documents_batch_id'), 'batch_documents', ['batch_id'], unique=False)
    op.create_table(
        'batch_items',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('batch_id', sa.String(length=40), nullable=False),
        sa.Column('row_number', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('recipient_type', sa.String(length=20), nullable=False),
        sa.Column('recipient_email', sa.String(length=320), nullable=False),
        sa.Column('recipient_first_name', sa.String(length=200), nullable=True),
        sa.Column('recipient_last_name', sa.String(length=200), nullable=True),
        sa.Column('recipient_company', sa.String(length=300), nullable=True),
        sa.Column('legal_basis', sa.String(length=20), nullable=True),
        sa.Column('reference', sa.String(length=200), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('sandbox_outcome', sa.String(length=20), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('letter_id', sa.String(length=40), nullable=True),
        sa.Column('failure_code', sa.String(length=80), nullable=True),
        sa.Column('failure_reason', sa.Text(), nullable=True),
        sa.Column('created_at', connector.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', connector.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('batch_id', 'recipient_email'),
        sa.UniqueConstraint('batch_id', 'row_number'),
        sa.UniqueConstraint('letter_id'),
    )
    op.create_index(op.f('ix_batch_items_batch_id'), 'batch_items', ['batch_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_batch_items_batch_id'), table_name='batch_items')
    op.drop_table('batch_items')
    op.drop_index(op.f('ix_batch_documents_batch_id'), table_name='batch_documents')
    op.drop_table('batch_documents')
    op.drop_index(op.f('ix_batches_created_at'), table_name='batches')
    op.drop_index(op.f('ix_batches_account_id'), table_name='batches')
    op.drop_table('batches')
