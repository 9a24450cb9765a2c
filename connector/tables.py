"""Every table of the bridge in one metadata: the core tables (``connector/models.py``) and each
feature's own (archive, batches, consent, monitoring).

Import ``metadata`` from here, not ``models.Base.metadata``, wherever the whole schema matters
(migrations, retention erasure, archive operations): a feature's tables are registered only once its
models module is imported, and the feature modules import the core, never the other way round.
"""

from __future__ import annotations

from sqlalchemy import MetaData

import connector.archive.models  # noqa: F401 - archived packages and evidence records
import connector.batches.models  # noqa: F401 - batches, their documents and rows
import connector.consent.models  # noqa: F401 - consent invitations, legal bases, paper register
import connector.monitoring.models  # noqa: F401 - alert rules and the KPI index
import connector.monitoring.rollups  # noqa: F401 - flush hooks that keep the KPI rollups in step
from connector.models import Base

metadata: MetaData = Base.metadata
