"""The connection: the bridge's URL and an API key, tested with ``GET /v1/me`` whose ``name`` labels it."""

from __future__ import annotations

from connector.platforms.model import Authentication, AuthField, Endpoint, FieldType, Text

AUTHENTICATION = Authentication(
    fields=(
        AuthField("base_url", Text("Bridge URL", "URL du bridge"), FieldType.STRING,
                  Text("The address of your LRE Bridge, e.g. `https://lre.example.com`.",
                       "L'adresse de votre LRE Bridge, par ex. `https://lre.exemple.fr`."),
                  placeholder="https://lre.example.com"),
        AuthField("api_key", Text("API key", "Clé d'API"), FieldType.PASSWORD,
                  Text("Create one with `lre-bridge keys create --account <name>`.",
                       "Créez-la avec `lre-bridge keys create --account <nom>`.")),
    ),
    test=Endpoint("GET", "/v1/me"),
    label_field="name",
)
