"""Alerts (issue 17): a new alert as a trigger, to post it to Slack or by e-mail."""

from __future__ import annotations

from connector.delivery.events import ACCOUNT_EVENTS
from connector.platforms.catalog.items import SAMPLE_EVENT_ID, account_event_item
from connector.platforms.model import Endpoint, FieldType, Kind, Operation, OutputField, Text

ALERT_OUTPUTS = (
    OutputField("id", Text("Event ID", "ID de l'événement")),
    OutputField("type", Text("Event type", "Type d'événement")),
    OutputField("occurred_at", Text("Raised at", "Levée le"), FieldType.DATETIME),
    OutputField("alert_id", Text("Alert ID", "ID de l'alerte")),
    OutputField("rule", Text("Rule", "Règle")),
    OutputField("label_en", Text("Rule (English)", "Règle (anglais)")),
    OutputField("label_fr", Text("Rule (French)", "Règle (français)")),
    OutputField("severity", Text("Severity", "Gravité")),
    OutputField("message", Text("Message", "Message")),
    OutputField("value", Text("Measured value", "Valeur mesurée"), FieldType.NUMBER),
    OutputField("threshold", Text("Threshold", "Seuil"), FieldType.NUMBER),
    OutputField("subject", Text("Subject (e.g. the webhook)", "Objet (par ex. le webhook)")),
    OutputField("status", Text("Status", "Statut")),
)
NEW_ALERT = Operation(
    key="new_alert",
    kind=Kind.TRIGGER,
    noun=Text("Alert", "Alerte"),
    label=Text("New Alert", "Nouvelle alerte"),
    description=Text("Triggers when the bridge raises an alert: technical failures over 1 %, bounces over 5 %, a "
                     "job given up, a webhook disabled, provider credentials refused.",
                     "Se déclenche quand le bridge lève une alerte : échecs techniques au-delà de 1 %, rebonds "
                     "au-delà de 5 %, tâche abandonnée, webhook désactivé, identifiants refusés par le prestataire."),
    endpoint=Endpoint("GET", "/v1/events"),
    inputs=(),
    outputs=ALERT_OUTPUTS,
    sample=account_event_item(SAMPLE_EVENT_ID, "alert.raised", "2026-12-01T09:00:00Z",
                              ACCOUNT_EVENTS["alert.raised"].example),
    events=("alert.raised",),
    instant=True,
)
