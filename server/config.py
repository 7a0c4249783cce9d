"""The one settings table: name, default, help. The only module that reads KGPUB_* variables.

Each setting feeds the CLI (as --name), the app (app.config["KGPUB"][name]) and the README
(tests/test_config.py checks that every setting is documented there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph.store import StoreSettings


@dataclass(frozen=True)
class Setting:
    """One setting: its name, type, default and a one-line help."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "KGPUB_" + self.name.upper()

    def parse(self, raw: str) -> Any:
        if isinstance(self.default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(self.default, int):
            return int(raw)
        if isinstance(self.default, float):
            return float(raw)
        return raw


SETTINGS: tuple[Setting, ...] = (
    Setting("base_uri", "http://127.0.0.1:5000/", "base IRI under which every IRI is minted"),
    Setting("data", "data", "folder of source listings (*.txt) used when no SOURCE is given"),
    Setting(
        "out", "publication", "publication folder (git-ignored); holds current -> releases/<id>"
    ),
    Setting("title", "", "library title; default: from the page headings ('Library – …')"),
    Setting("license", "", "IRI of the data licence, stated in VoID/DCAT"),
    Setting("publisher", "", "publisher (an IRI or a name), stated in VoID/DCAT"),
    Setting(
        "enrich",
        False,
        "compute related entries and the meaning search at build time (the [enrich] extra)",
    ),
    Setting(
        "shacl_engine", "turbo", "SHACL engine: turbo (pyshacl-turbo, fast) or pyshacl (reference)"
    ),
    Setting(
        "store", "", "SPARQL 1.1 query endpoint of an external store (empty: the embedded store)"
    ),
    Setting("store_update", "", "SPARQL 1.1 Update endpoint of the store (empty: the query URL)"),
    Setting(
        "store_data", "", "Graph Store HTTP Protocol endpoint used for bulk loading (optional)"
    ),
    Setting(
        "store_timeout_param",
        "",
        "query parameter giving the store a time budget in ms (Virtuoso: timeout)",
    ),
    Setting(
        "store_streams",
        2,
        "Graph Store requests a build sends at once to load the store (one per core it can use)",
    ),
    Setting("host", "127.0.0.1", "address the server listens on"),
    Setting("port", 5000, "port the server listens on"),
    Setting("workers", 2, "number of server worker processes"),
    Setting("page_size", 100, "entries per page in paged lists and collections"),
    Setting("cache_mb", 64, "memory per worker for rendered pages and descriptions, in MiB"),
    Setting(
        "warm_up",
        False,
        "ignored: a worker reads a release a page at a time, with nothing to warm (kept for "
        "existing command lines)",
    ),
    Setting("admin_email", "admin@example.org", "contact e-mail stated by OAI-PMH Identify"),
    Setting(
        "max_body",
        1_048_576,
        "largest request body accepted, in bytes (413 beyond, unread; chunked bodies too)",
    ),
    Setting("query_timeout", 10.0, "time budget of one SPARQL query, in seconds"),
    Setting("query_max_length", 100_000, "longest SPARQL query accepted, in bytes (413 beyond)"),
    Setting("query_max_results", 100_000, "most result rows or triples one query may return"),
    Setting("query_concurrency", 4, "SPARQL queries evaluated at once per worker; more get 503"),
    Setting("query_memory", 2048, "address space of one SPARQL query process, in MiB (503 beyond)"),
    Setting(
        "dump_concurrency",
        2,
        "dump files sent at once per worker; more get 503 with Retry-After (each holds a thread)",
    ),
    Setting(
        "send_timeout",
        30.0,
        "seconds a response waits for its client to take more bytes; a slower reader is cut off",
    ),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


# The store's credentials come from the environment only: never an option, never logged.
STORE_USER = "KGPUB_STORE_USER"
STORE_PASSWORD = "KGPUB_STORE_PASSWORD"


def store_settings(
    settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> StoreSettings:
    """Where the graph lives, from the settings and the credentials in the environment."""
    env = os.environ if environ is None else environ
    return StoreSettings(
        query=str(settings.get("store") or ""),
        update=str(settings.get("store_update") or ""),
        data=str(settings.get("store_data") or ""),
        timeout_param=str(settings.get("store_timeout_param") or ""),
        streams=int(settings.get("store_streams", BY_NAME["store_streams"].default)),
        user=env.get(STORE_USER) or None,
        password=env.get(STORE_PASSWORD) or None,
    )


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Settings from defaults, then KGPUB_* variables, then explicit overrides (CLI, tests)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        if setting.env in env:
            value = setting.parse(env[setting.env])
        if overrides and overrides.get(setting.name) is not None:
            value = overrides[setting.name]
        values[setting.name] = value
    return values
