"""The n8n community node package (``n8n_nodes/``), derived from :mod:`connector.platforms.catalog`.

:func:`n8n_definition` translates the catalogue into n8n shapes: the node's ``properties``
(resource and operation selectors, one parameter per input, in n8n's conventions: required inputs
on top, optional ones in an *Additional Fields* or *Filters* collection, *Return All* / *Limit* for
lists, a binary property name for files), the runtime table the hand-written node reads to call the
bridge (method, path, where each parameter goes), and the trigger's event choices.
:func:`export_n8n_package` writes it to ``nodes/LreBridge/generated/catalog.ts`` of the package,
copying the hand-written package first when the target directory does not hold it yet.

Any catalogue operation offered to n8n (``"n8n" in op.platforms``) becomes a node operation: the
table :data:`N8N_NAMES` only gives the known ones n8n-style names; an unknown one is placed under
a resource named after its noun, so that a new catalogue block needs no change here.

The package's modules: ``names`` (where an operation sits, n8n's wording), ``parameters`` (inputs as
node parameters and their runtime spec), ``operations`` (the node description and runtime table),
``trigger`` (the trigger node's events and filters) and ``package`` (the generated file, the export).
"""

from connector.platforms.exporters.n8n.operations import n8n_definition
from connector.platforms.exporters.n8n.package import GENERATED_FILE, HEADER, export_n8n_package, render_generated
from connector.platforms.exporters.n8n.trigger import trigger_events, trigger_filters

__all__ = ["GENERATED_FILE", "HEADER", "export_n8n_package", "n8n_definition", "render_generated", "trigger_events",
           "trigger_filters"]
