"""The template engine on its own: French filters, data coercion, the sandbox, reproducible PDFs."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pypdf
import pytest

from connector.rendering import TemplateDataError, TemplateSourceError, render_spec
from connector.rendering.environment import check_source, date_fr, montant
from connector.rendering.fields import FieldSpec, coerce_data
from connector.rendering.library import TemplateSpec, builtin_templates, prepare_upload
from connector.rendering.render import render_html

LETTER_TIME = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
BUILTINS = sorted(builtin_templates())


def examples(name: str) -> dict[str, object]:
    """The example value of every field of a built-in template (they double as test data)."""
    return {spec.key: spec.example for spec in builtin_templates()[name].fields if spec.example is not None}


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    # Line breaks and the no-break spaces of amounts are layout, not content.
    text = "\n".join(page.extract_text() for page in reader.pages)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def custom_spec(source: str, fields: list[FieldSpec] | None = None) -> TemplateSpec:
    """A custom template that skips upload checks, to exercise the render-time sandbox."""
    import hashlib

    return TemplateSpec(name="essai", version=1, title="Essai", source=source, fields=fields or [],
                        origin="custom", sha256=hashlib.sha256(source.encode()).hexdigest())


# --- French filters ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (date(2026, 11, 27), "27 novembre 2026"),
    (date(2027, 2, 1), "1er février 2027"),
    (datetime(2026, 8, 15, 23, 0), "15 août 2026"),
    ("2026-12-31", "31 décembre 2026"),
])
def test_date_fr_writes_dates_the_french_way(value, expected):
    assert date_fr(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("1250"), "1\u202f250,00\u00a0€"),
    (Decimal("1234567.891"), "1\u202f234\u202f567,89\u00a0€"),
    (Decimal("999.5"), "999,50\u00a0€"),
    (Decimal("-42"), "-42,00\u00a0€"),
    (0, "0,00\u00a0€"),
])
def test_montant_groups_thousands_with_narrow_no_break_spaces(value, expected):
    assert montant(value) == expected


# --- data coercion -------------------------------------------------------------------------------

AMOUNT = [FieldSpec(key="montant", label="Montant", type="amount")]


@pytest.mark.parametrize(("raw", "expected"), [
    (1250.5, Decimal("1250.5")),
    (1250, Decimal("1250")),
    ("1250,50", Decimal("1250.50")),
    ("1 250,50 €", Decimal("1250.50")),
    ("1\u202f250,50", Decimal("1250.50")),
    ("1.250,50", Decimal("1250.50")),
    ("1,250.50", Decimal("1250.50")),
    ("1250.50", Decimal("1250.50")),
])
def test_amounts_are_accepted_as_numbers_or_french_strings(raw, expected):
    assert coerce_data(AMOUNT, {"montant": raw})["montant"] == expected


@pytest.mark.parametrize("raw", ["douze euros", "1,2,3,4x", True, {"value": 3}, "NaN"])
def test_an_amount_that_is_not_one_is_refused(raw):
    with pytest.raises(TemplateDataError) as caught:
        coerce_data(AMOUNT, {"montant": raw})
    assert caught.value.errors[0]["field"] == "data.montant"


@pytest.mark.parametrize("raw", ["2026-11-27", "2026-11-27T23:30:00+01:00", "27/11/2026", date(2026, 11, 27)])
def test_dates_are_accepted_as_iso_dates_datetimes_or_french_dates(raw):
    fields = [FieldSpec(key="echeance", label="Échéance", type="date")]
    assert coerce_data(fields, {"echeance": raw})["echeance"] == date(2026, 11, 27)


def test_lists_are_accepted_as_arrays_or_one_item_per_line():
    fields = [FieldSpec(key="points", label="Points", type="list")]
    assert coerce_data(fields, {"points": ["Un", " Deux ", ""]})["points"] == ["Un", "Deux"]
    assert coerce_data(fields, {"points": "Un\r\nDeux\n\n"})["points"] == ["Un", "Deux"]


def test_every_invalid_field_is_reported_at_once():
    spec = builtin_templates()["mise_en_demeure"]
    data = examples("mise_en_demeure")
    del data["numero_facture"], data["destinataire_nom"]
    data.update(montant_du="beaucoup", date_echeance="demain", expediteur_email="pas-une-adresse")
    with pytest.raises(TemplateDataError) as caught:
        coerce_data(spec.fields, data)
    reported = {(error["field"], error["code"]) for error in caught.value.errors}
    assert reported == {
        ("data.numero_facture", "missing"),
        ("data.destinataire_nom", "missing"),
        ("data.montant_du", "invalid_format"),
        ("data.date_echeance", "invalid_format"),
        ("data.expediteur_email", "invalid_format"),
    }


def test_a_value_outside_the_declared_choices_is_refused():
    spec = builtin_templates()["convocation_ag_copropriete"]
    with pytest.raises(TemplateDataError) as caught:
        coerce_data(spec.fields, {**examples("convocation_ag_copropriete"), "type_assemblee": "secrète"})
    assert caught.value.errors == [{"field": "data.type_assemblee", "code": "not_a_choice",
                                    "message": caught.value.errors[0]["message"]}]


def test_data_that_is_not_an_object_is_refused():
    with pytest.raises(TemplateDataError) as caught:
        coerce_data(AMOUNT, ["1250"])
    assert caught.value.errors[0]["field"] == "data"


# --- built-in templates --------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_template_renders_its_examples_into_the_pdf(name):
    rendered = render_spec(builtin_templates()[name], examples(name), LETTER_TIME)
    text = pdf_text(rendered.pdf)
    for key, value in examples(name).items():
        spec = next(s for s in builtin_templates()[name].fields if s.key == key)
        if spec.type in ("text", "email") and not spec.choices and key != "formule_appel":
            assert str(value) in text, key
    assert "Lyon, le 27 novembre 2026" in text
    assert "Objet :" in text and "Jean Dupont" in text
    assert rendered.template_name == name and rendered.template_version == builtin_templates()[name].version
    assert rendered.filename == f"{name}-2026-11-27.pdf"


def test_builtin_templates_cover_the_five_letters_of_the_issue():
    assert {"mise_en_demeure", "convocation_ag_copropriete", "resiliation_contrat", "fin_periode_essai",
            "indexation_loyer"} <= set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_template_declares_every_variable_it_reads(name):
    spec = builtin_templates()[name]
    # Passing the upload checks means: safe, and no variable left undeclared.
    prepare_upload(name, spec.title, spec.source, [{"key": f.key, "type": f.type} for f in spec.fields])


def test_the_mise_en_demeure_prints_amounts_and_dates_in_french():
    text = pdf_text(render_spec(builtin_templates()["mise_en_demeure"], examples("mise_en_demeure"),
                                LETTER_TIME).pdf)
    assert "1 250,50 €" in text
    assert "au plus tard le 11 décembre 2026" in text
    assert "facture n° F-2026-0412 du 15 septembre 2026" in text


def test_accents_the_euro_sign_and_latin_extended_letters_survive():
    data = {**examples("mise_en_demeure"), "destinataire_nom": "Łukasz Wójcik-Ştefănescu", "lieu": "Besançon",
            "objet_facture": "l’œuvre « Ça déménage » — façade Æsir"}
    text = pdf_text(render_spec(builtin_templates()["mise_en_demeure"], data, LETTER_TIME).pdf)
    assert "Łukasz Wójcik-Ştefănescu" in text
    assert "Besançon, le 27 novembre 2026" in text
    assert "l’œuvre « Ça déménage » — façade Æsir" in text


def test_a_long_agenda_spills_onto_a_second_page():
    agenda = [f"Résolution n° {i} : travaux de réfection de l’ascenseur (devis de 12 345,67 €)" for i in range(1, 41)]
    data = {**examples("convocation_ag_copropriete"), "ordre_du_jour": agenda}
    pdf = render_spec(builtin_templates()["convocation_ag_copropriete"], data, LETTER_TIME).pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    second_page = reader.pages[1].extract_text()
    assert "Résolution n° 40" in pdf_text(pdf)
    assert "Résolution" in second_page and "page 2 /" in second_page


def test_the_data_is_escaped_not_interpreted_as_html():
    data = {**examples("mise_en_demeure"), "numero_facture": "<b>F-1</b> & {{ 7*7 }}"}
    html = render_html(builtin_templates()["mise_en_demeure"],
                       coerce_data(builtin_templates()["mise_en_demeure"].fields, data), date(2026, 11, 27))
    assert "&lt;b&gt;F-1&lt;/b&gt; &amp; {{ 7*7 }}" in html


# --- the PDF itself ------------------------------------------------------------------------------

def test_the_same_template_data_and_letter_time_give_byte_identical_pdfs():
    spec = builtin_templates()["indexation_loyer"]
    first = render_spec(spec, examples("indexation_loyer"), LETTER_TIME).pdf
    second = render_spec(spec, examples("indexation_loyer"), LETTER_TIME).pdf
    assert first == second


# The next two start render workers on purpose (5 and 2 to 4 Python start-ups of about 1 s of CPU each, 8 s of the
# quick loop's CPU between them): subprocess tests, so `slow`. Every other render test still goes through
# the workers, and the hostile templates (tests/test_hostile_input.py) retire and replace them.
@pytest.mark.slow
def test_render_workers_are_recycled_and_a_recycled_worker_gives_the_same_bytes(monkeypatch):
    from connector.rendering import isolation

    monkeypatch.setattr(isolation, "RENDERS_PER_WORKER", 2)
    spec = builtin_templates()["indexation_loyer"]
    seen: set[int] = set()
    pdfs = set()
    for _ in range(5):
        pdfs.add(render_spec(spec, examples("indexation_loyer"), LETTER_TIME).pdf)
        seen.update(worker.process.pid for worker in isolation._pool._idle)
    assert len(pdfs) == 1  # warm, fresh and recycled workers lay the letter out alike
    assert len(seen) >= 3  # workers were replaced after two renders each


@pytest.mark.slow
def test_a_render_worker_whose_heap_grew_is_replaced_and_an_honest_one_is_kept(monkeypatch):
    from connector.rendering import isolation

    spec = builtin_templates()["indexation_loyer"]

    def pids_of_renders(count: int) -> list[int]:
        monkeypatch.setattr(isolation, "_pool", isolation._Pool(1))
        try:
            pids = []
            for _ in range(count):
                render_spec(spec, examples("indexation_loyer"), LETTER_TIME)
                pids.append(isolation._pool._idle[0].process.pid)  # the worker for the next render
            return pids
        finally:
            isolation._pool.close()

    # Honest letters do not grow a worker: one process renders them all.
    assert len(set(pids_of_renders(4))) == 1
    # Workers started now retire on any growth at all: each render gets a new one.
    monkeypatch.setattr(isolation, "RETIRE_GROWTH_BYTES", -1)
    assert len(set(pids_of_renders(3))) == 3


@pytest.mark.slow
def test_another_process_with_another_hash_seed_and_time_zone_gives_the_same_bytes():
    import hashlib
    import os
    import subprocess
    import sys

    script = (
        "import hashlib, sys; from datetime import UTC, datetime\n"
        "from connector.rendering.library import builtin_templates\n"
        "from connector.rendering.render import render_spec\n"
        "spec = builtin_templates()['convocation_ag_copropriete']\n"
        "data = {f.key: f.example for f in spec.fields if f.example is not None}\n"
        "pdf = render_spec(spec, data, datetime(2026, 11, 27, 9, 30, tzinfo=UTC)).pdf\n"
        "print(hashlib.sha256(pdf).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "America/New_York"}
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True,
                           timeout=120).stdout.strip()
    here = render_spec(builtin_templates()["convocation_ag_copropriete"], examples("convocation_ag_copropriete"),
                       LETTER_TIME).pdf
    assert other == hashlib.sha256(here).hexdigest()


def test_the_letter_time_is_the_pdf_creation_date():
    spec = builtin_templates()["indexation_loyer"]
    pdf = render_spec(spec, examples("indexation_loyer"), LETTER_TIME).pdf
    later = render_spec(spec, examples("indexation_loyer"), datetime(2026, 11, 28, 9, 30, tzinfo=UTC)).pdf
    assert pypdf.PdfReader(io.BytesIO(pdf)).metadata["/CreationDate"].startswith("D:20261127093000")
    assert pdf != later


def test_the_pdf_is_a4_with_title_author_and_the_embedded_font():
    pdf = render_spec(builtin_templates()["resiliation_contrat"], examples("resiliation_contrat"),
                      LETTER_TIME).pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
    assert reader.metadata.title == "Confirmation de résiliation de contrat"
    assert reader.metadata.author == "SARL Dupont Rénovation"
    fonts = {name: font.get_object() for name, font in page["/Resources"]["/Font"].items()}
    embedded = {name for name, font in fonts.items() if "DejaVuSans" in str(font["/BaseFont"])}
    assert len(embedded) >= 2  # regular and bold
    for name in embedded:
        assert "/FontFile2" in fonts[name]["/FontDescriptor"].get_object()
    # ReportLab declares Helvetica as the initial graphics state, but no text is drawn with it.
    content = page.get_contents().get_data().decode("latin-1")
    for other in set(fonts) - embedded:
        for block in re.findall(rf"{re.escape(other)} [\d.]+ Tf(.*?)ET", content, re.DOTALL):
            assert "Tj" not in block


def test_a_letter_sent_late_in_the_evening_is_dated_in_french_time():
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 1 January in Paris
    text = pdf_text(render_spec(builtin_templates()["fin_periode_essai"], examples("fin_periode_essai"), late).pdf)
    assert "Lyon, le 1er janvier 2027" in text


# --- source checks and the sandbox ---------------------------------------------------------------

def test_a_syntax_error_is_reported_with_its_line():
    with pytest.raises(TemplateSourceError) as caught:
        check_source("<p>Bonjour</p>\n<p>{{ nom }</p>\n")
    assert caught.value.line == 2


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ nom['__class__'] }}",
    "{{ nom|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% include '/etc/passwd' %}",
    "{% import 'base.html' as b %}",
    "{% from 'base.html' import x %}",
    "{% extends '/etc/passwd' %}",
    "{% extends nom %}",
])
def test_unsafe_constructs_are_refused_at_upload(source):
    with pytest.raises(TemplateSourceError):
        check_source(source)


def test_the_sandbox_refuses_dunder_access_at_render_time_too():
    spec = custom_spec("<p>{{ ''.__class__.__mro__ }}</p>")
    with pytest.raises(TemplateSourceError, match="Unsafe template|unsafe"):
        render_html(spec, {}, date(2026, 11, 27))


def test_the_sandbox_refuses_calling_unsafe_methods_at_render_time():
    spec = custom_spec("{% set d = {} %}{{ d.update({'a': 1}) }}{{ d }}")
    with pytest.raises(TemplateSourceError, match="Unsafe"):
        render_html(spec, {}, date(2026, 11, 27))


def test_a_template_failing_at_render_time_names_its_line():
    spec = custom_spec("<p>un</p>\n<p>deux</p>\n<p>{{ 1 // 0 }}</p>\n")
    with pytest.raises(TemplateSourceError) as caught:
        render_html(spec, {}, date(2026, 11, 27))
    assert caught.value.line == 3


def test_a_rendered_letter_reads_no_file():
    spec = custom_spec('<html><body><p>Texte</p><img src="/etc/passwd"><img src="file:///etc/hostname">'
                       '<link rel="stylesheet" href="/etc/passwd"></body></html>')
    pdf = render_spec(spec, {}, LETTER_TIME).pdf
    assert "root:" not in pdf_text(pdf)


# --- field discovery -----------------------------------------------------------------------------

def test_fields_are_discovered_from_a_template_without_declarations():
    source, fields = prepare_upload("relance", "Relance", "<p>{{ client }} doit {{ somme }} depuis le "
                                    "{{ date_lettre|date_fr }}. {% for l in lignes %}{{ l }}{% endfor %}</p>", None)
    assert [(f.key, f.type, f.required) for f in fields] == [
        ("client", "text", True), ("lignes", "text", True), ("somme", "text", True)]


def test_a_template_extending_the_base_gets_the_standard_fields_first():
    _, fields = prepare_upload(
        "relance", "Relance", '{% extends "base.html" %}{% block objet %}Relance{% endblock %}'
        "{% block corps %}<p>{{ somme|montant }}</p>{% endblock %}",
        [{"key": "somme", "label": "Somme", "type": "amount"}])
    keys = [f.key for f in fields]
    assert keys[0] == "expediteur_nom" and keys[-1] == "somme"
    assert "destinataire_adresse" in keys and "lieu" in keys


def test_declared_fields_must_cover_every_variable_the_template_reads():
    with pytest.raises(TemplateSourceError, match="somme") as caught:
        prepare_upload("relance", "Relance", "<p>{{ client }} {{ somme }}</p>", [{"key": "client"}])
    assert caught.value.field == "fields"


# --- bounded work --------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 7 ** 100000000 }}",
    "{% for i in range(1000000) %}{% endfor %}",
])
def test_a_template_cannot_ask_for_unbounded_work(source):
    with pytest.raises(TemplateSourceError, match="Unsafe template"):
        render_html(custom_spec(source), {}, date(2026, 11, 27))


def test_loops_nested_three_deep_are_refused_at_upload():
    with pytest.raises(TemplateSourceError, match="nested"):
        check_source("{% for a in x %}{% for b in a %}{% for c in b %}{{ c }}{% endfor %}{% endfor %}{% endfor %}")


def test_a_template_that_runs_too_long_is_stopped(monkeypatch):
    from connector.rendering import environment

    monkeypatch.setattr(environment, "RENDER_SECONDS", 0.2)
    # Exponential recursion: 2**40 calls, each of which checks the deadline.
    source = ("{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}"
              "{{ f(0) }}")
    with pytest.raises(TemplateSourceError, match="longer than a letter may take"):
        render_html(custom_spec(source), {}, date(2026, 11, 27))


@pytest.mark.slow
def test_the_render_benchmark_runs_and_prints_its_ratio():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "render.py"
    result = subprocess.run([sys.executable, str(script), "--letters", "3"], capture_output=True, text=True,
                            timeout=300, check=True)
    assert "letters/s" in result.stdout and "ratio bridge/raw" in result.stdout
