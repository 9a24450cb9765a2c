"""The Make custom app, derived from :mod:`connector.platforms.catalog`.

:func:`make_app_files` translates the catalogue into the layout of Make's "local development for
apps" (``makecomapp.json`` plus one IMLJSON file per component part), which the Make Apps Editor
(VS Code extension) deploys as it is. :func:`export_make_app` writes it; regenerating gives the same
bytes (a test compares them).

How catalogue operations become Make components (one module of this package each):

- create -> action module, search -> search module (iterates, paginates with ``next_cursor``)
  (``modules``; their inputs as Make parameters in ``parameters``);
- instant trigger -> a dedicated webhook (attach ``POST /v1/hooks``, detach ``DELETE /v1/hooks/{id}``)
  and its instant trigger module, plus a polling trigger over the same events (``/v1/events``)
  (``triggers``);
- hidden triggers feed dropdowns: RPCs (``listTemplates``; ``templateFields`` for the fields of the
  chosen template) (``general``, with the base, the IML functions and the connection);
- plus the connection (``GET /v1/me``) and the universal "Make an API call" module;
- ``manifest`` assembles them into ``makecomapp.json`` and the files of the layout, and writes them.

Outputs of type FILE become Make's file pair (``filename`` + ``file`` buffer) on operations whose
endpoint answers with the file (``file_response``); on JSON operations they are left out (Make cannot
carry a file by reference): the download modules fetch them.
"""

from connector.platforms.exporters.make.dialect import camel, kebab
from connector.platforms.exporters.make.manifest import (
    NotAMakeAppDirectory,
    export_make_app,
    make_app_files,
    make_components,
)
from connector.platforms.exporters.make.modules import make_operations

__all__ = ["NotAMakeAppDirectory", "camel", "export_make_app", "kebab", "make_app_files", "make_components",
           "make_operations"]
