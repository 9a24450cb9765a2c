"""merge the feature branches (batches, monitoring, consent, archive, queue indexes, idempotency lease)

Revision ID: 0009
Revises: 0003, 0004, 0005, 0006, 0007, 0008
Create Date: 2026-12-01

The six features were built side by side, each on its own branch from 0002 (their tables do not
overlap). This revision joins them so that the history has one head again and the next migration
has one parent.
"""

from __future__ import annotations

revision = '0009'
down_revision = ('0003', '0004', '0005', '0006', '0007', '0008')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
