"""tests/schemas/kurir_schemas.py - kurir's JSON Schemas (docs/schemas/),
loaded once, and a JSON reader with the rules kurir's own parser (jansson)
applies before any schema: no duplicate keys, no NUL and no lone surrogate
in a string.

Works with Debian 12's python3-jsonschema (4.10, RefResolver) and with newer
releases (the referencing registry)."""

import json
import os

import jsonschema

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA_DIR = os.path.join(ROOT, "docs", "schemas")
BASE = "https://kurir.invalid/schemas/"

# Short names for the CLI and the checks.
NAMES = {
    "send": "job-send",
    "campaign": "job-campaign",
    "contacts": "job-contacts",
    "job": "job",
    "status": "event-status",
    "latest": "event-status",
    "reply": "event-reply",
    "results": "event-results",
    "opted-out": "event-opted-out",
    "dlq-headers": "dlq-headers",
    "job-headers": "job-headers",
    "accounts": "accounts",
}

# Topic of a job type, and the type a topic gives a job without one.
TOPIC_OF_TYPE = {"send": "send", "campaign": "campaign", "contact-sync": "contacts"}
TYPE_OF_TOPIC = {v: k for k, v in TOPIC_OF_TYPE.items()}


class JsonError(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise JsonError("duplicate key %r" % k)
        seen[k] = v
    return seen


def _check_strings(v):
    if isinstance(v, str):
        if "\0" in v:
            raise JsonError("a string holds \\u0000")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
            raise JsonError("a string holds a lone surrogate")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_strings(k)
            _check_strings(x)
    elif isinstance(v, list):
        for x in v:
            _check_strings(x)


def loads(text):
    """Parses JSON as kurir does; raises JsonError (a ValueError)."""
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except JsonError:
        raise
    except ValueError as e:
        raise JsonError("bad JSON: %s" % e) from None
    _check_strings(doc)
    return doc


def _load_all():
    out = {}
    for f in sorted(os.listdir(SCHEMA_DIR)):
        if f.endswith(".schema.json"):
            with open(os.path.join(SCHEMA_DIR, f), encoding="utf-8") as fh:
                out[f[: -len(".schema.json")]] = loads(fh.read())
    return out


SCHEMAS = _load_all()
V = jsonschema.Draft202012Validator

try:  # jsonschema >= 4.18
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    _REGISTRY = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
        for s in SCHEMAS.values()
    )

    def _validator(schema):
        return V(schema, registry=_REGISTRY)

except ImportError:  # Debian 12: jsonschema 4.10
    _STORE = {s["$id"]: s for s in SCHEMAS.values()}

    def _validator(schema):
        base = schema.get("$id", BASE)
        resolver = jsonschema.RefResolver(base, schema, store=_STORE)
        return V(schema, resolver=resolver)


_CACHE = {}


def validator(name, pointer=""):
    """The validator of schema `name` (a short name or a file stem), or of
    the subschema at JSON pointer `pointer` in it."""
    stem = NAMES.get(name, name)
    if stem not in SCHEMAS:
        raise KeyError("no schema %r (have: %s)" % (name, ", ".join(sorted(NAMES))))
    key = (stem, pointer)
    if key not in _CACHE:
        s = SCHEMAS[stem]
        _CACHE[key] = _validator(s if not pointer else {"$ref": s["$id"] + "#" + pointer})
    return _CACHE[key]


def errors(name, doc, pointer=""):
    """One line per schema error of `doc`, deepest first; [] when valid."""
    out = []
    for e in sorted(validator(name, pointer).iter_errors(doc), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match([e])
        where = "/".join(str(p) for p in best.absolute_path) or "(root)"
        out.append("%s: %s" % (where, best.message))
    return out


def schema_for_job(doc, topic=None):
    """The schema a job is checked with: its topic's, or by its "type"."""
    if topic is not None:
        return topic
    t = doc.get("type") if isinstance(doc, dict) else None
    return TOPIC_OF_TYPE.get(t, "send") if isinstance(t, str) else "send"
