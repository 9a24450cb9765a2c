"""The inputs several operations share: the template and its fields, the recipient, the legal basis,
the message, references, idempotency and sandbox options, and the choices they offer.
"""

from __future__ import annotations

from connector.letters.vocabulary import (
    RECIPIENT_TYPE_LABELS,
    SANDBOX_OUTCOME_LABELS,
    LetterStatus,
    RecipientType,
    SandboxOutcome,
)
from connector.letters.vocabulary import STATUS_LABELS as VOCABULARY_STATUS_LABELS
from connector.platforms.model import Choice, Dynamic, FieldType, Group, InputField, Text

RECIPIENT_TYPES = tuple(Choice(t.value, Text(*RECIPIENT_TYPE_LABELS[t])) for t in RecipientType)
SANDBOX_OUTCOMES = tuple(Choice(o.value, Text(*SANDBOX_OUTCOME_LABELS[o])) for o in SandboxOutcome)
STATUS_LABELS: dict[str, Text] = {status.value: Text(*label) for status, label in VOCABULARY_STATUS_LABELS.items()}
EVENT_STATUSES = tuple(s.value for s in LetterStatus if s != LetterStatus.QUEUED)

TEMPLATE = InputField(
    "template", Text("Template", "Modèle"), required=True, to="body.template", dynamic=Dynamic.TEMPLATES,
    alters_dynamic_fields=True,
    help=Text("The letter template; its fields appear below once chosen.",
              "Le modèle de lettre ; ses champs s'affichent ci-dessous une fois choisi."),
)
TEMPLATE_FIELDS = InputField(
    "data", Text("Template fields", "Champs du modèle"), type=FieldType.OBJECT, to="body.data",
    dynamic=Dynamic.TEMPLATE_FIELDS,
)
RECIPIENT = (
    InputField("recipient_type", Text("Recipient type", "Type de destinataire"), required=True,
               to="body.recipient.type", choices=RECIPIENT_TYPES, default="professional", group=Group.RECIPIENT,
               help=Text("French law (CPCE art. L.100) requires an individual's prior consent to receive "
                         "registered e-mail; record it in the bridge first.",
                         "La loi (CPCE art. L.100) exige le consentement préalable d'un particulier ; "
                         "enregistrez-le d'abord dans le bridge.")),
    InputField("recipient_email", Text("Recipient e-mail", "E-mail du destinataire"), FieldType.EMAIL,
               required=True, to="body.recipient.email", placeholder="compta@exemple.fr", group=Group.RECIPIENT),
    InputField("recipient_company", Text("Company", "Société"), to="body.recipient.company", group=Group.RECIPIENT,
               help=Text("Required for a professional unless a last name is given.",
                         "Obligatoire pour un professionnel, sauf si le nom est renseigné.")),
    InputField("recipient_first_name", Text("First name", "Prénom"), to="body.recipient.first_name",
               group=Group.RECIPIENT),
    InputField("recipient_last_name", Text("Last name", "Nom"), to="body.recipient.last_name",
               group=Group.RECIPIENT),
)
# Issue 18: why the recipient may receive an LRE, and a letter that waits for a pending invitation.
LEGAL_BASIS = InputField(
    "recipient_legal_basis", Text("Legal basis", "Base légale"), to="body.recipient.legal_basis",
    group=Group.RECIPIENT,
    choices=(Choice("professional", Text("Professional recipient (no consent needed)",
                                         "Destinataire professionnel (sans consentement)")),
             Choice("consent", Text("Recipient's consent (CPCE art. L.100)",
                                    "Consentement du destinataire (CPCE art. L.100)")),
             Choice("condominium", Text("Notification to a co-owner (loi 65-557 art. 42-1)",
                                        "Notification à un copropriétaire (loi 65-557 art. 42-1)"))),
    help=Text("Leave empty: professional for a professional, consent for anyone else. The co-owner basis must "
              "be enabled for your account, and refuses co-owners who asked for paper.",
              "Laissez vide : professionnel pour un professionnel, consentement sinon. La base copropriété doit "
              "être activée pour votre compte et refuse les copropriétaires qui ont demandé le papier."),
)
HOLD_UNTIL_CONSENT = InputField(
    "hold_until_consent", Text("Wait for the consent being asked", "Attendre le consentement demandé"),
    FieldType.BOOLEAN, to="body.hold_until_consent", group=Group.ADVANCED,
    help=Text("When the recipient has a pending consent invitation: the letter waits, is sent once they accept, "
              "and fails (consent_refused) if they refuse or do not answer.",
              "Si une invitation au consentement est en cours : la lettre attend, part dès l'accord, et échoue "
              "(consent_refused) en cas de refus ou sans réponse."),
)
MESSAGE = InputField(
    "message", Text("Notification message", "Message de notification"), FieldType.TEXT, to="body.message",
    help=Text("Text of the e-mail telling the recipient a registered letter awaits them.",
              "Texte de l'e-mail qui avertit le destinataire qu'une lettre recommandée l'attend."),
)
REFERENCE = InputField(
    "reference", Text("Your reference", "Votre référence"), to="body.reference", placeholder="DOSSIER-42",
    help=Text("Your own reference (case, invoice…), to find the letter later.",
              "Votre référence (dossier, facture…), pour retrouver la lettre ensuite."),
)
METADATA = InputField(
    "metadata", Text("Metadata", "Métadonnées"), FieldType.OBJECT, to="body.metadata", group=Group.ADVANCED,
    help=Text("Free key/value pairs kept with the letter.", "Paires clé/valeur libres conservées avec la lettre."),
)
IDEMPOTENCY_KEY = InputField(
    "idempotency_key", Text("Idempotency key", "Clé d'idempotence"), to="header.Idempotency-Key",
    group=Group.ADVANCED,
    help=Text("Leave empty: a key derived from the Zap and these inputs makes a retried run never send twice. "
              "Set it (e.g. a row id) to decide yourself what counts as the same letter.",
              "Laissez vide : une clé tirée du Zap et de ces champs empêche tout double envoi lors d'une "
              "relance. Renseignez-la (ex. l'identifiant de la ligne) pour décider vous-même."),
)
SENDER_OTP = InputField(
    "sender_otp", Text("Sender one-time code (AR24 eIDAS)", "Code à usage unique de l'expéditeur (AR24 eIDAS)"),
    to="body.sender_otp", placeholder="123456",
    help=Text("With AR24: the 6-digit code from the sender's authenticator app, valid a few seconds; the bridge "
              "exchanges it for a one-hour identification. Leave empty with the sandbox or Maileva "
              "(certificate identification).",
              "Avec AR24 : le code à 6 chiffres de l'application d'authentification de l'expéditeur ; le bridge "
              "l'échange contre une identification valable une heure. Laissez vide avec le bac à sable ou "
              "Maileva (identification par certificat)."),
)
SANDBOX_OUTCOME = InputField(
    "sandbox_outcome", Text("Sandbox outcome", "Issue simulée (bac à sable)"), to="body.sandbox_outcome",
    choices=SANDBOX_OUTCOMES, group=Group.ADVANCED,
    help=Text("Only with the sandbox provider: the outcome the simulated letter will have.",
              "Uniquement avec le fournisseur bac à sable : l'issue de la lettre simulée."),
)


# Operations only the Make and n8n apps offer (the Zapier app has no behaviour for them).
NOT_ZAPIER = ("make", "n8n")
LIMIT = InputField(
    "limit", Text("Maximum number of results", "Nombre maximum de résultats"), FieldType.INTEGER, default="20",
    help=Text("The search stops after this many (newest first).",
              "La recherche s'arrête après ce nombre (plus récents d'abord)."),
)
LETTER_ID = InputField(
    "letter_id", Text("Letter ID", "ID de la lettre"), required=True, to="path.letter_id",
    placeholder="let_01JDZ3K8Q6X5W2V9T4R7N1M0PA",
)
