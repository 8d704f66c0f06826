"""Forms generated from a product's input JSON Schema, and posted forms turned back into input.

Pure functions: the page validates the result with the product's own input model, the same
validation ``POST /v1/products/{name}/jobs`` runs, so messages match the API's 422s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from modelyard_platform.errors import field_path
from pydantic import BaseModel, ValidationError

Widget = Literal["input", "textarea", "number", "select", "checkbox", "json"]
LONG_TEXT_NAMES = frozenset({"text", "body", "prompt", "message", "document"})
SHORT_TEXT_MAX = 500


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    widget: Widget
    required: bool = False
    description: str = ""
    choices: tuple[str, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    integer: bool = False
    value: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checked(self) -> bool:
        return self.value in {"on", "true", "1"}


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Follow ``$ref`` and unwrap ``anyOf: [X, null]``; returns (schema, nullable)."""
    nullable = False
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(prop["anyOf"])
        if len(options) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **options[0]}
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        prop = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop, nullable


def _initial(default: Any, widget: Widget) -> str:
    if default is None:
        return ""
    if widget == "json":
        return json.dumps(default, indent=2)
    if widget == "checkbox":
        return "on" if default else ""
    return str(default)


def fields_for(schema: dict[str, Any]) -> list[FormField]:
    """One field per top-level property, in schema order."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    result = []
    for name, raw in schema.get("properties", {}).items():
        prop, _nullable = _resolve(raw, defs)
        kind = prop.get("type")
        widget: Widget
        if "enum" in prop:
            widget = "select"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("object", "array"):
            widget = "json"
        elif name in LONG_TEXT_NAMES or (prop.get("maxLength") or 0) > SHORT_TEXT_MAX:
            widget = "textarea"
        else:
            widget = "input"
        default = raw.get("default", prop.get("default"))
        result.append(FormField(
            name=name,
            label=raw.get("title") or prop.get("title") or name.replace("_", " ").capitalize(),
            widget=widget,
            required=name in required,
            description=raw.get("description")
            or ("" if "$ref" in raw else prop.get("description", "")),
            choices=tuple(str(c) for c in prop.get("enum", ())),
            default=default,
            minimum=prop.get("minimum"),
            maximum=prop.get("maximum"),
            max_length=prop.get("maxLength"),
            integer=kind == "integer",
            value=_initial(default, widget),
        ))
    return result


def parse(fields: list[FormField], form: Mapping[str, Any]
          ) -> tuple[dict[str, Any], list[FormField]]:
    """The input object a form describes, and the fields refilled with what was posted.

    An empty optional field is left out (its default applies); an empty required one is left
    out too, so validation reports it as missing, as the API would.  JSON that does not parse
    is reported on its field here, before validation.
    """
    data: dict[str, Any] = {}
    filled = []
    for f in fields:
        posted = form.get(f.name)
        text = posted if isinstance(posted, str) else ""
        error = ""
        if f.widget == "checkbox":
            data[f.name] = bool(text)
        elif text.strip() == "":
            pass
        elif f.widget == "number":
            data[f.name] = to_number(text.strip(), f.integer)
        elif f.widget == "json":
            try:
                data[f.name] = json.loads(text)
            except json.JSONDecodeError as exc:
                error = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        else:
            data[f.name] = text
        filled.append(replace(f, value=text, error=error))
    return data, filled


def to_number(text: str, integer: bool) -> Any:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text  # left for the model to reject with its own message


def validate(model: type[BaseModel], data: dict[str, Any], prefix: str | None = None
             ) -> dict[str, str]:
    """``{top-level field: message}`` for every error ``model`` finds (empty when valid).

    Messages carry the API's field path (``input.body: Field required``), so a page and the
    API name a bad field the same way.
    """
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            top = str(loc[0]) if loc else ""
            path = field_path(loc, prefix)
            errors.setdefault(top, f"{path}: {err.get('msg', 'invalid')}" if path
                              else str(err.get("msg", "invalid")))
        return errors
    return {}


def with_errors(fields: list[FormField], errors: Mapping[str, str]) -> list[FormField]:
    return [replace(f, error=f.error or errors.get(f.name, "")) for f in fields]
