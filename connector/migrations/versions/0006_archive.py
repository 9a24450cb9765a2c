"""archive: packages kept in the archive and their evidence records (issue 19)

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.models

revision = '0006'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence_records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('root_sha256', sa.String(length=64), nullable=False),
    sa.Column('leaves', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('timestamps', sa.Integer(), nullable=False),
    sa.Column('last_timestamp_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('renew_before', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence_records', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_records_renew_before', ['renew_before'], unique=False)

    op.create_table('archived_packages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('letter_id', sa.String(length=40), nullable=False),
    sa.Column('storage_key', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('seal_sha256', sa.String(length=64), nullable=False),
    sa.Column('sealed_at', connector.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], ),
    sa.ForeignKeyConstraint(['record_id'], ['evidence_records.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('archived_packages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_archived_packages_letter_id'), ['letter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_archived_packages_record_id'), ['record_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('archived_packages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_archived_packages_record_id'))
        batch_op.drop_index(batch_op.f('ix_archived_packages_letter_id'))
    op.drop_table('archived_packages')
    with op.batch_alter_table('evidence_records', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_records_renew_before')
    op.drop_table('evidence_records')
