"""The request examples the OpenAPI document shows, one per JSON body.

A business user copies these into Make's HTTP module, an n8n HTTP Request node or curl, and
schemathesis sends them in its explicit phase: each one must be a body the bridge accepts as it is.
``tests/test_openapi_examples.py`` sends every example of the document to a fresh account and fails
on any answer other than a success. Ids that only a live account has (an event to replay) are the
one thing that test replaces.
"""

from __future__ import annotations

from typing import Any

# A formal notice to pay, from the built-in template: every field it requires.
_NOTICE_DATA = {
    "expediteur_nom": "Cabinet Durand",
    "expediteur_adresse": "12 rue de la Paix, 75002 Paris",
    "destinataire_nom": "Exemple SARL",
    "destinataire_adresse": "3 avenue Foch, 69006 Lyon",
    "lieu": "Paris",
    "numero_facture": "F-2026-118",
    "montant_du": "1250.00",
    "date_echeance": "2026-10-31",
    "date_limite": "2026-12-11",
}

LETTER: dict[str, Any] = {
    "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
    "template": "mise_en_demeure",
    "data": _NOTICE_DATA,
    "reference": "DOSSIER-42",
    "sandbox_outcome": "accepted",
}

RENDER: dict[str, Any] = {"data": _NOTICE_DATA, "letter_date": "2026-11-27"}

# A convocation to a general assembly: the common values once, one row per co-owner (a company here,
# so that the example needs no consent; individuals need one, or the account's condominium basis).
BATCH: dict[str, Any] = {
    "template": "convocation_ag_copropriete",
    "data": {
        "expediteur_nom": "Cabinet Durand, syndic",
        "expediteur_adresse": "3 place Bellecour\n69002 Lyon",
        "lieu": "Lyon",
        "nom_copropriete": "Résidence Les Tilleuls",
        "adresse_immeuble": "18 rue Victor-Hugo, 69002 Lyon",
        "date_assemblee": "2030-06-20",
        "heure_assemblee": "18 h 30",
        "lieu_assemblee": "Salle des fêtes, 2 rue d'Enghien, 69002 Lyon",
        "ordre_du_jour": ["Élection du président de séance", "Approbation des comptes"],
    },
    "rows": [
        {"type": "professional", "email": "gestion@sci-tilleuls.fr", "company": "SCI Les Tilleuls",
         "destinataire_nom": "SCI Les Tilleuls", "destinataire_adresse": "18 rue Victor-Hugo\n69002 Lyon",
         "lots": "Lot 12 : appartement | Lot 112 : cave"},
    ],
    "reference": "AG-2030",
}

CONSENT: dict[str, Any] = {
    "email": "jeanne.martin@exemple.fr", "first_name": "Jeanne", "last_name": "Martin",
    "method": "electronic_form", "obtained_at": "2026-10-01T09:30:00+02:00",
    "recorded_by": "Marie Lefèvre, gestionnaire",
}

INVITATION: dict[str, Any] = {"email": "paul.bernard@exemple.fr", "name": "Paul Bernard", "expires_in_days": 14,
                              "language": "fr"}

LEGAL_BASES: dict[str, Any] = {
    "condominium": True,
    "statement": "Les copropriétaires ont été informés par courrier du 2 septembre 2026 qu'ils peuvent demander "
                 "à recevoir les notifications sur papier (loi n° 65-557, art. 42-1).",
}

PAPER_REQUEST: dict[str, Any] = {"email": "lucie.moreau@exemple.fr", "name": "Lucie Moreau",
                                 "requested_at": "2026-11-03T10:00:00+01:00", "received_via": "registered_letter"}

ALERT_RULE: dict[str, Any] = {"enabled": True, "threshold": 0.05, "min_volume": 20}

RETENTION: dict[str, Any] = {"retention_days": 3650}

PROVIDER: dict[str, Any] = {"provider": "sandbox", "settings": {}}

SECRET_ROTATION: dict[str, Any] = {"grace_period_seconds": 86400}

REPLAY: dict[str, Any] = {"event_id": "evt_01JD3Q7K9V2XN4M8P6R5T0W1YZ"}

TEMPLATE: dict[str, Any] = {
    "name": "relance_loyer",
    "title": "Relance de loyer impayé",
    "source": "<p>{{ lieu }}</p><p>Madame, Monsieur {{ nom_locataire }},</p>"
              "<p>Le loyer de {{ mois }}, soit {{ montant }} €, reste impayé à ce jour.</p>",
    "fields": [
        {"key": "lieu", "label": "Lieu", "type": "text", "required": True},
        {"key": "nom_locataire", "label": "Nom du locataire", "type": "text", "required": True},
        {"key": "mois", "label": "Mois impayé", "type": "text", "required": True},
        {"key": "montant", "label": "Montant dû", "type": "amount", "required": True},
    ],
}

TEMPLATE_VERSION: dict[str, Any] = {
    "source": "<p>{{ lieu }}</p><p>Madame, Monsieur {{ nom_locataire }},</p>"
              "<p>Sauf erreur de notre part, le loyer de {{ mois }} ({{ montant }} €) reste impayé.</p>",
    "fields": TEMPLATE["fields"],
}
