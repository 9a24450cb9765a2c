"""Hostile and careless input through the public API: no 500, no silent change, bounded resources."""

from __future__ import annotations

import resource

import pytest

from tests.test_templates_api import upload

# The API process may grow by at most this much while a template asks for hundreds of megabytes:
# the render runs in a worker whose address space is limited (connector.rendering.isolation).
API_PROCESS_GROWTH_LIMIT_MB = 60

HOSTILE_TEMPLATES = {
    "center": "{% set x = 'a'|center(300000000) %}<p>{{ x|length }}</p>",
    "percent": "<p>{{ ('%0300000000d' % 1)|length }}</p>",
    "concat": "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}"
              "<p>{{ ns.x|length }}</p>",
    "format": "<p>{{ '%0300000000d'|format(1)|length }}</p>",
    "join": "<p>{{ (range(1000)|join('a'|center(400000)))|length }}</p>",
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(HOSTILE_TEMPLATES))
def test_a_template_that_builds_a_huge_value_is_refused_and_the_process_stays_small(client, auth, kind):
    assert upload(client, auth, name=f"hostile_{kind}", source=HOSTILE_TEMPLATES[kind], fields=[]).status_code == 201
    before = _peak_rss_mb()
    response = client.post(f"/v1/templates/hostile_{kind}/render", json={"data": {}}, headers=auth)
    grown = _peak_rss_mb() - before
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    error = response.json["error"]
    assert error["code"] == "invalid_template"
    assert f"hostile_{kind}" in error["message"]  # the refused template is named
    assert "memory" in error["message"] or "too" in error["message"] or "text" in error["message"]
    assert grown < API_PROCESS_GROWTH_LIMIT_MB, f"the API process grew by {grown:.0f} MB"
    # The service still renders ordinary letters afterwards.
    assert upload(client, auth, name="ordinary", source="<p>Bonjour</p>", fields=[]).status_code == 201
    assert client.post("/v1/templates/ordinary/render", json={"data": {}}, headers=auth).status_code == 200


def test_a_letter_of_too_many_pages_is_refused(client, auth):
    source = '{% for i in range(200) %}<div style="page-break-after: always">Page {{ i }}</div>{% endfor %}'
    assert upload(client, auth, name="long_letter", source=source, fields=[]).status_code == 201
    response = client.post("/v1/templates/long_letter/render", json={"data": {}}, headers=auth)
    assert response.status_code == 422
    assert "pages" in response.json["error"]["message"] and "long_letter" in response.json["error"]["message"]
