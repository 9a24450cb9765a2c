"""``/v1/templates`` over HTTP, and letters sent from a template."""

from __future__ import annotations

import hashlib
import io
import re

import pypdf
import pytest
from sqlalchemy import func, select

from connector.models import Document, Job, Letter, TemplateVersion
from connector.rendering.library import builtin_templates

BUILTINS = sorted(builtin_templates())

RELANCE = """{% extends "base.html" %}
{% block objet %}Relance — facture n° {{ numero }}{% endblock %}
{% block corps %}
<p>Nous restons dans l’attente du règlement de {{ somme|montant }}.</p>
{% endblock %}
"""
RELANCE_FIELDS = [
    {"key": "numero", "label": "Numéro de facture", "type": "text", "example": "F-1"},
    {"key": "somme", "label": "Somme due", "type": "amount", "example": "99.90"},
]


def examples(name: str) -> dict[str, object]:
    return {spec.key: spec.example for spec in builtin_templates()[name].fields if spec.example is not None}


def standard_data() -> dict[str, object]:
    data = examples("mise_en_demeure")
    return {key: value for key, value in data.items() if key.startswith(("expediteur_", "destinataire_", "lieu"))}


def pdf_text(pdf: bytes) -> str:
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return re.sub(r"[\s\u00a0\u202f]+", " ", " ".join(page.extract_text() for page in pages))


def count(services, model) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def stored(services) -> tuple[int, int, int, int]:
    return (count(services, TemplateVersion), count(services, Letter), count(services, Document),
            count(services, Job))


def upload(client, auth, name="relance", source=RELANCE, fields=RELANCE_FIELDS, title="Relance amiable"):
    body = {"name": name, "title": title, "source": source}
    if fields is not None:
        body["fields"] = fields
    return client.post("/v1/templates", json=body, headers=auth)


# --- the library ---------------------------------------------------------------------------------

def test_it_lists_the_builtin_templates(client, auth):
    response = client.get("/v1/templates", headers=auth)
    assert response.status_code == 200
    listed = {item["name"]: item for item in response.json["data"]}
    assert set(BUILTINS) <= set(listed)
    assert listed["mise_en_demeure"]["title"] == "Mise en demeure de payer"
    assert listed["mise_en_demeure"]["origin"] == "builtin" and listed["mise_en_demeure"]["version"] == 1


def test_a_template_serves_fields_the_platforms_can_map(client, auth):
    response = client.get("/v1/templates/convocation_ag_copropriete", headers=auth)
    assert response.status_code == 200
    fields = {field["key"]: field for field in response.json["fields"]}
    assert fields["ordre_du_jour"] == {
        "key": "ordre_du_jour", "label": "Ordre du jour", "type": "list", "required": True,
        "help_text": "Une résolution par élément (ou par ligne).", "example": fields["ordre_du_jour"]["example"],
        "list": True, "choices": None,
    }
    assert fields["type_assemblee"]["choices"] == ["ordinaire", "extraordinaire"]
    assert fields["expediteur_nom"]["required"] is True and fields["reference"]["required"] is False
    assert list(fields)[0] == "expediteur_nom"


def test_an_unknown_template_is_a_404(client, auth):
    response = client.get("/v1/templates/lettre_au_pere_noel", headers=auth)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "template_not_found"


def test_templates_need_an_api_key(client):
    assert client.get("/v1/templates").status_code == 401


# --- fields in each platform's own shape -----------------------------------------------------------

# What Make's own schema for parameters (integromat/vscode-apps-sdk parameters.json) lets a field
# carry, and the n8n-workflow ResourceMapperField keys and field types.
MAKE_KEYS = {"name", "label", "help", "type", "required", "multiline", "time", "spec", "options", "validate"}
MAKE_TYPES = {"text", "date", "email", "array", "select"}
N8N_KEYS = {"id", "displayName", "required", "defaultMatch", "canBeUsedToMatch", "display", "type", "options"}
N8N_TYPES = {"string", "dateTime", "array", "options"}


def platform_fields(client, auth, name: str, platform: str) -> list[dict]:
    response = client.get(f"/v1/templates/{name}/fields", query_string={"platform": platform}, headers=auth)
    assert response.status_code == 200, response.json
    return response.json["fields"]


@pytest.mark.parametrize("name", BUILTINS)
def test_make_gets_parameters_its_schema_accepts(client, auth, name):
    generic = {f["key"]: f for f in client.get(f"/v1/templates/{name}", headers=auth).json["fields"]}
    fields = platform_fields(client, auth, name, "make")
    assert [f["name"] for f in fields] == list(generic)
    for field in fields:
        assert set(field) <= MAKE_KEYS and field["type"] in MAKE_TYPES, field
        assert 1 <= len(field["name"]) <= 128 and 1 <= len(field["label"]) <= 256
        assert field.get("help", "x") != ""  # Make refuses an empty help
        assert field["required"] == generic[field["name"]]["required"]


def test_make_parameters_keep_what_each_field_is(client, auth):
    fields = {f["name"]: f for f in platform_fields(client, auth, "convocation_ag_copropriete", "make")}
    assert fields["ordre_du_jour"]["type"] == "array"
    assert fields["ordre_du_jour"]["spec"] == {"type": "text", "label": "Ordre du jour"}
    assert fields["date_assemblee"] == {**fields["date_assemblee"], "type": "date", "time": False}
    assert fields["lieu_assemblee"]["multiline"] is True
    assert fields["type_assemblee"]["options"] == [{"label": "ordinaire", "value": "ordinaire"},
                                                   {"label": "extraordinaire", "value": "extraordinaire"}]
    assert "Ex. : 18 h 30" in fields["heure_assemblee"]["help"]


@pytest.mark.parametrize("name", BUILTINS)
def test_n8n_gets_resource_mapper_fields(client, auth, name):
    fields = platform_fields(client, auth, name, "n8n")
    generic = client.get(f"/v1/templates/{name}", headers=auth).json["fields"]
    assert [f["id"] for f in fields] == [f["key"] for f in generic]
    for field in fields:
        assert set(field) <= N8N_KEYS and field["type"] in N8N_TYPES, field
        assert field["display"] is True and field["defaultMatch"] is False
    if name == "convocation_ag_copropriete":
        by_id = {f["id"]: f for f in fields}
        assert by_id["ordre_du_jour"]["type"] == "array" and by_id["date_assemblee"]["type"] == "dateTime"
        assert by_id["type_assemblee"]["options"][1] == {"name": "extraordinaire", "value": "extraordinaire"}


def test_values_as_make_and_n8n_send_them_make_the_letter(client, auth):
    """Make sends a date picked in Paris as the UTC instant of its midnight, n8n as a local
    date-time, both send lists as arrays: the letter shows the day the user picked."""
    data = examples("convocation_ag_copropriete")
    for sent in ("2027-01-13T23:00:00.000Z", "2027-01-14T00:00:00.000+01:00"):
        body = {"data": {**data, "date_assemblee": sent, "ordre_du_jour": ["Vote du budget", "Questions diverses"]},
                "letter_date": "2026-11-27"}
        response = client.post("/v1/templates/convocation_ag_copropriete/render", json=body, headers=auth)
        assert response.status_code == 200, response.json
        text = pdf_text(response.data)
        assert "14 janvier 2027" in text and "13 janvier 2027" not in text
        assert "Vote du budget" in text and "Questions diverses" in text


def test_fields_for_an_unknown_platform_or_template_are_refused(client, auth):
    response = client.get("/v1/templates/mise_en_demeure/fields?platform=ifttt", headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_platform" and response.json["error"]["field"] == "platform"
    assert client.get("/v1/templates/inconnu/fields?platform=make", headers=auth).status_code == 404
    generic = client.get("/v1/templates/mise_en_demeure/fields", headers=auth).json["fields"]
    assert generic == client.get("/v1/templates/mise_en_demeure", headers=auth).json["fields"]


# --- preview -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_template_previews_as_a_pdf_and_stores_nothing(client, auth, services, name):
    before = stored(services)
    response = client.post(f"/v1/templates/{name}/render", json={"data": examples(name), "letter_date": "2026-11-27"},
                           headers=auth)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/pdf"
    assert response.headers["X-Template-Version"] == str(builtin_templates()[name].version)
    assert response.headers["X-Content-SHA256"] == hashlib.sha256(response.data).hexdigest()
    assert "Lyon, le 27 novembre 2026" in pdf_text(response.data)
    assert stored(services) == before


def test_the_same_preview_twice_gives_the_same_bytes(client, auth):
    body = {"data": examples("mise_en_demeure"), "letter_date": "2026-11-27T10:00:00Z"}
    first = client.post("/v1/templates/mise_en_demeure/render", json=body, headers=auth)
    second = client.post("/v1/templates/mise_en_demeure/render", json=body, headers=auth)
    assert first.data == second.data


def test_a_preview_with_missing_and_invalid_fields_names_every_one_of_them(client, auth, services):
    data = examples("indexation_loyer")
    del data["ancien_loyer"], data["lieu"]
    data["date_effet"] = "le mois prochain"
    before = stored(services)
    response = client.post("/v1/templates/indexation_loyer/render", json={"data": data}, headers=auth)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_template_data"
    assert {d["field"] for d in error["details"]} == {"data.ancien_loyer", "data.lieu", "data.date_effet"}
    assert all(field in error["message"] for field in ("data.ancien_loyer", "data.lieu", "data.date_effet"))
    assert stored(services) == before


def test_a_preview_with_a_bad_letter_date_is_a_422(client, auth):
    response = client.post("/v1/templates/mise_en_demeure/render",
                           json={"data": examples("mise_en_demeure"), "letter_date": "demain"}, headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["field"] == "letter_date"


# --- custom templates ----------------------------------------------------------------------------

def test_an_uploaded_template_is_listed_served_and_rendered(client, auth):
    response = upload(client, auth)
    assert response.status_code == 201, response.json
    assert response.json["version"] == 1 and response.json["origin"] == "custom"
    assert response.headers["Location"] == "/v1/templates/relance"
    keys = [field["key"] for field in response.json["fields"]]
    assert keys[0] == "expediteur_nom" and keys[-2:] == ["numero", "somme"]

    assert "relance" in {item["name"] for item in client.get("/v1/templates", headers=auth).json["data"]}
    preview = client.post("/v1/templates/relance/render",
                          json={"data": {**standard_data(), "numero": "F-77", "somme": "1 999,5"}}, headers=auth)
    assert preview.status_code == 200
    assert "Relance — facture n° F-77" in pdf_text(preview.data)
    assert "1 999,50 €" in pdf_text(preview.data)


def test_fields_are_discovered_when_an_upload_declares_none(client, auth):
    response = upload(client, auth, source="<p>Bonjour {{ prenom }}, votre dossier {{ dossier }}.</p>", fields=None)
    assert response.status_code == 201
    assert [(f["key"], f["type"], f["required"]) for f in response.json["fields"]] == [
        ("dossier", "text", True), ("prenom", "text", True)]


def test_a_template_with_a_syntax_error_is_refused_with_its_line_and_not_stored(client, auth, services):
    before = stored(services)
    response = upload(client, auth, source="<p>un</p>\n<p>deux</p>\n<p>{% if numero %}trois</p>\n", fields=None)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_template" and error["field"] == "source"
    assert error["details"][0]["line"] == 3 and "Line 3" in error["message"]
    assert stored(services) == before


@pytest.mark.parametrize("source", [
    "<p>{{ ''.__class__.__mro__ }}</p>",
    "<p>{{ numero|attr('__class__') }}</p>",
    "{% include 'base.html' %}",
    "{% extends '../../etc/passwd' %}",
])
def test_a_sandbox_escape_attempt_is_refused_and_not_stored(client, auth, services, source):
    before = stored(services)
    response = upload(client, auth, source=source, fields=None)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_template"
    assert stored(services) == before


def test_declared_fields_must_cover_the_templates_variables(client, auth, services):
    response = upload(client, auth, fields=[{"key": "numero"}])
    assert response.status_code == 422
    assert response.json["error"]["field"] == "fields" and "somme" in response.json["error"]["message"]
    assert count(services, TemplateVersion) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Pas Valide!", "title": "x", "source": "<p>x</p>"}, "name"),
    ({"name": 42, "title": "x", "source": "<p>x</p>"}, "name"),
    ({"name": ["a"], "title": "x", "source": "<p>x</p>"}, "name"),
    ({"name": "ok", "title": "", "source": "<p>x</p>"}, "title"),
    ({"name": "ok", "title": "x"}, "source"),
    ({"name": "ok", "title": "x", "source": "<p>{{ a }}</p>", "fields": [{"key": "a", "type": "couleur"}]}, "fields"),
    ({"name": "ok", "title": "x", "source": "<p>x</p>", "description": ["x"]}, "description"),
    ({"name": "ok", "title": "x", "source": "<p>x</p>", "description": "x" * 1001}, "description"),
])
def test_a_malformed_upload_names_the_field_at_fault(client, auth, body, field):
    response = client.post("/v1/templates", json=body, headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["field"] == field


def test_an_upload_retried_with_the_same_idempotency_key_stores_one_version(client, auth, services):
    body = {"name": "relance", "title": "Relance", "source": RELANCE, "fields": RELANCE_FIELDS}
    headers = {**auth, "Idempotency-Key": "upload-relance-1"}
    first = client.post("/v1/templates", json=body, headers=headers)
    again = client.post("/v1/templates", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json == first.json
    assert count(services, TemplateVersion) == 1


def test_uploading_an_existing_name_again_is_a_conflict(client, auth):
    assert upload(client, auth).status_code == 201
    response = upload(client, auth)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "template_exists"


def test_put_adds_a_version_and_the_history_lists_them(client, auth):
    upload(client, auth)
    response = client.put("/v1/templates/relance", json={"source": RELANCE.replace("Relance", "Second rappel"),
                                                         "fields": RELANCE_FIELDS}, headers=auth)
    assert response.status_code == 201
    assert response.json["version"] == 2 and response.json["title"] == "Relance amiable"
    versions = client.get("/v1/templates/relance/versions", headers=auth).json["data"]
    assert [v["version"] for v in versions] == [2, 1]
    assert client.get("/v1/templates/relance", headers=auth).json["version"] == 2


def test_a_description_is_listed_and_served_and_a_new_version_keeps_it_unless_given(client, auth):
    text = "Premier rappel amiable avant mise en demeure, à envoyer 8 jours après l'échéance."
    body = {"name": "relance", "title": "Relance amiable", "source": RELANCE, "fields": RELANCE_FIELDS,
            "description": text}
    assert client.post("/v1/templates", json=body, headers=auth).json["description"] == text
    listed = {t["name"]: t for t in client.get("/v1/templates", headers=auth).json["data"]}
    assert listed["relance"]["description"] == text
    assert client.get("/v1/templates/relance", headers=auth).json["description"] == text

    kept = client.put("/v1/templates/relance", json={"source": RELANCE, "fields": RELANCE_FIELDS}, headers=auth)
    assert kept.json["version"] == 2 and kept.json["description"] == text
    changed = client.put("/v1/templates/relance", json={"source": RELANCE, "fields": RELANCE_FIELDS,
                                                        "description": "Relance ferme."}, headers=auth)
    assert changed.json["description"] == "Relance ferme."
    assert upload(client, auth, name="sans-description").json["description"] == ""


def test_put_on_an_unknown_template_is_a_404(client, auth):
    response = client.put("/v1/templates/inconnu", json={"title": "x", "source": "<p>x</p>"}, headers=auth)
    assert response.status_code == 404


def test_a_custom_template_shadows_the_builtin_of_the_same_name_for_its_account_only(client, auth, other_auth):
    source = builtin_templates()["mise_en_demeure"].source.replace("Mise en demeure de payer", "Dernier avis")
    response = client.put("/v1/templates/mise_en_demeure", json={"source": source}, headers=auth)
    assert response.status_code == 201
    # Versions continue the built-in's numbering, so (name, version) on a letter is unambiguous.
    assert response.json["version"] == 2 and response.json["origin"] == "custom"
    assert response.json["title"] == "Mise en demeure de payer"
    # Without a fields list, the new version keeps the declared labels and types.
    fields = {field["key"]: field for field in response.json["fields"]}
    assert fields["montant_du"]["type"] == "amount" and fields["date_facture"]["required"] is False
    preview = client.post("/v1/templates/mise_en_demeure/render", json={"data": examples("mise_en_demeure")},
                          headers=auth)
    assert "Dernier avis" in pdf_text(preview.data)
    theirs = client.get("/v1/templates/mise_en_demeure", headers=other_auth).json
    assert theirs["origin"] == "builtin" and theirs["version"] == 1

    assert client.delete("/v1/templates/mise_en_demeure", headers=auth).status_code == 204
    assert client.get("/v1/templates/mise_en_demeure", headers=auth).json["origin"] == "builtin"


def test_deleting_a_custom_template_hides_it_and_builtins_cannot_be_deleted(client, auth):
    upload(client, auth)
    assert client.delete("/v1/templates/relance", headers=auth).status_code == 204
    assert client.get("/v1/templates/relance", headers=auth).status_code == 404
    assert client.delete("/v1/templates/relance", headers=auth).status_code == 404
    response = client.delete("/v1/templates/fin_periode_essai", headers=auth)
    assert response.status_code == 409 and response.json["error"]["code"] == "builtin_template"
    # A new upload under the deleted name does not reuse a version number.
    assert upload(client, auth).json["version"] == 2


def test_an_account_never_sees_another_accounts_templates(client, auth, other_auth):
    upload(client, auth)
    assert client.get("/v1/templates/relance", headers=other_auth).status_code == 404
    assert "relance" not in {t["name"] for t in client.get("/v1/templates", headers=other_auth).json["data"]}
    assert client.delete("/v1/templates/relance", headers=other_auth).status_code == 404


def test_the_openapi_document_describes_the_template_routes(client):
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/v1/templates", "/v1/templates/{name}", "/v1/templates/{name}/render",
                 "/v1/templates/{name}/versions"):
        assert path in paths


# --- letters from a template ---------------------------------------------------------------------

def letter_from_template(name: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "recipient": {"type": "professional", "email": "compta@exemple.fr", "company": "Exemple SARL"},
        "template": name,
        "data": data,
        "reference": "DOSSIER-42",
    }


def test_a_letter_sent_from_a_template_carries_the_rendered_pdf_its_hash_and_version(client, auth):
    response = client.post("/v1/letters", json=letter_from_template("mise_en_demeure", examples("mise_en_demeure")),
                           headers=auth)
    assert response.status_code == 201, response.json
    letter = response.json
    assert letter["template"] == {"name": "mise_en_demeure", "version": 1}
    document = client.get(f"/v1/letters/{letter['id']}/document", headers=auth)
    assert document.status_code == 200 and document.mimetype == "application/pdf"
    assert letter["documents"][0]["sha256"] == hashlib.sha256(document.data).hexdigest()
    assert letter["documents"][0]["filename"].startswith("mise_en_demeure-")
    text = pdf_text(document.data)
    assert "Mise en demeure de payer — facture n° F-2026-0412" in text and "1 250,50 €" in text


def test_a_letter_records_the_custom_version_it_was_rendered_from(client, auth):
    upload(client, auth)
    client.put("/v1/templates/relance", json={"source": RELANCE, "fields": RELANCE_FIELDS}, headers=auth)
    data = {**standard_data(), "numero": "F-9", "somme": 12}
    response = client.post("/v1/letters", json=letter_from_template("relance", data), headers=auth)
    assert response.status_code == 201, response.json
    assert response.json["template"] == {"name": "relance", "version": 2}


def test_a_letter_with_invalid_template_data_names_every_field_and_stores_nothing(client, auth, services):
    data = examples("mise_en_demeure")
    del data["montant_du"], data["date_limite"]
    data["expediteur_email"] = "nulle-part"
    before = stored(services)
    response = client.post("/v1/letters", json=letter_from_template("mise_en_demeure", data), headers=auth)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "invalid_template_data"
    assert {d["field"] for d in error["details"]} == {"data.montant_du", "data.date_limite", "data.expediteur_email"}
    assert stored(services) == before


def test_a_letter_from_an_unknown_template_is_a_404_and_stores_nothing(client, auth, services):
    before = stored(services)
    response = client.post("/v1/letters", json=letter_from_template("inconnu", {}), headers=auth)
    assert response.status_code == 404
    assert response.json["error"] == {"code": "template_not_found", "field": "template",
                                      "message": response.json["error"]["message"]}
    assert stored(services) == before


def test_a_custom_template_failing_on_the_data_is_a_422_and_no_letter(client, auth, services):
    fields = [{"key": "lignes", "label": "Lignes", "type": "list"}]
    assert upload(client, auth, source="<p>Troisième ligne : {{ lignes[2] }}</p>", fields=fields).status_code == 201
    before = stored(services)
    response = client.post("/v1/letters", json=letter_from_template("relance", {"lignes": ["une", "deux"]}),
                           headers=auth)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_template"
    assert response.json["error"]["details"][0]["line"] == 1
    assert stored(services) == before


def test_rendering_a_letter_leaves_an_idle_session_idle(client, auth, services):
    """On SQLite a transaction holds the write lock: none may stay open across the render."""
    from datetime import UTC, datetime

    from connector.rendering import render_for_letter

    upload(client, auth)
    account_id = client.get("/v1/me", headers=auth).json["id"]
    session = services.db.sessionmaker()
    try:
        rendered = render_for_letter(session, account_id, "relance", {**standard_data(), "numero": "F-1", "somme": 1},
                                     datetime(2026, 11, 27, tzinfo=UTC))
        assert rendered.template_version == 1
        assert not session.in_transaction()
    finally:
        session.close()
