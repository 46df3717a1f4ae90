"""The manifest's shape as pydantic models, and pydantic's errors turned into ours.

The models check structure only: which keys exist, which types they hold, simple
bounds. What a render setting means stays with `RenderSettings`, and files are
checked by `manifest.py`, so each rule lives in one place.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from .jobs import format_value
from .run_values import check_cluster_address, devices_value, seconds_value, whole_number
from .value_words import show, unknown_name
from .yaml_lines import Loc, Problems

# strict: YAML already gives real numbers and booleans, so "3600" or `true` where
# a number belongs is a mistake to report, not to convert.
_STRICT = ConfigDict(extra="forbid", strict=True)


def _template(value: Any) -> Any:
    """`name: {style}` unquoted is YAML's mapping {style: null}: say how to write it."""
    if isinstance(value, dict) and value and all(v is None for v in value.values()):
        written = "".join(f"{{{key}}}" for key in value)
        raise ValueError(f"expected text, got a mapping (YAML reads an unquoted {written} as one): "
                         f"quote the template, as in '{written}'")
    return value


def _one_or_many(value: Any) -> Any:
    # `contents: images/` reads naturally; treat a lone item as a list of one.
    return [value] if isinstance(value, (str, dict)) else value


_PATH_TAG, _BLEND_TAG = "style-path", "style-blend"  # appear in pydantic's error locations


def _style_kind(value: Any) -> str:
    return _BLEND_TAG if isinstance(value, dict) else _PATH_TAG


class BlendModel(BaseModel):
    """Several styles mixed into one style column."""

    model_config = _STRICT
    blend: list[str] = Field(min_length=1)
    weights: list[float] | None = None
    name: str | None = Field(None, min_length=1)


StyleItem = Annotated[
    Union[Annotated[str, Tag(_PATH_TAG)], Annotated[BlendModel, Tag(_BLEND_TAG)]],  # noqa: UP007
    Discriminator(_style_kind),
]
PathList = Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]
StyleList = Annotated[list[StyleItem], BeforeValidator(_one_or_many), Field(min_length=1)]


class EntryModel(BaseModel):
    """One item of `jobs:`: contents × styles, with its own overrides."""

    model_config = _STRICT
    content: str | None = None
    contents: PathList | None = None
    style: StyleItem | None = None
    styles: StyleList | None = None
    preset: str | None = None
    settings: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    name: Annotated[str, BeforeValidator(_template)] | None = Field(None, min_length=1)


class RunModel(BaseModel):
    """How to run. None of it changes the pixels, so none of it enters a job id."""

    model_config = _STRICT
    devices: Annotated[tuple[str, ...], BeforeValidator(devices_value)] | None = None
    cluster: Annotated[str, AfterValidator(check_cluster_address)] | None = None
    job_timeout: Annotated[float, BeforeValidator(seconds_value)] | None = Field(None, gt=0)
    batch_size: Annotated[int, BeforeValidator(whole_number)] | None = Field(None, ge=1)
    checkpoint_every: Annotated[int, BeforeValidator(whole_number)] | None = Field(None, ge=1)


class TopModel(BaseModel):
    """The whole file. Entries are checked one by one, so one bad entry hides nothing."""

    model_config = _STRICT
    output: str | None = Field(None, min_length=1)
    preset: str | None = None
    settings: dict[str, Any] | None = None
    sweep: dict[str, Any] | None = None
    run: RunModel | None = None
    jobs: list[Any] | None = None


def check_run_flags(**flags: Any) -> list[str]:
    """Command-line flags that stand in for `run:` keys, checked by the manifest's
    own rules: `--job-timeout: must be greater than 0, got -1.0`, one per bad flag."""
    try:
        RunModel.model_validate({key: value for key, value in flags.items() if value is not None})
    except ValidationError as exc:
        return [f"--{str(e['loc'][0]).replace('_', '-')}: "
                + _message(e["type"], e.get("input"), e.get("ctx") or {}, e["msg"]) for e in exc.errors()]
    return []


_NESTED = {"style": BlendModel, "styles": BlendModel, "run": RunModel}


def validate_model(
    model: type[BaseModel], raw: Any, path: Loc, problems: Problems, salvage: bool
) -> tuple[BaseModel | None, set[str]]:
    """Validate `raw`, reporting every error; returns the model and the keys that were bad.

    Unknown keys are always dropped so the rest still gets checked; with
    `salvage`, keys with bad values are dropped too (the caller then knows which).
    """
    try:
        return model.model_validate(raw), set()
    except ValidationError as exc:
        errors = exc.errors()
    for error in errors:
        problems.add(*translate(error, path, model))
    if not isinstance(raw, dict):
        return None, set()
    bad = {str(e["loc"][0]) for e in errors if e["loc"]}
    if not salvage and any(e["type"] != "extra_forbidden" or len(e["loc"]) != 1 for e in errors):
        return None, bad
    try:
        return model.model_validate({k: v for k, v in raw.items() if str(k) not in bad}), bad
    except ValidationError:
        return None, bad


def salvage_items(model: type[BaseModel], key: str, items: list[Any]) -> list[tuple[int, Any]]:
    """(index, parsed item) for each item of the list `key` that is fine on its own.

    The whole list was refused and its errors reported; the good items are kept
    so their files and blend weights still get checked in the same pass. A
    mapping whose only fault is an unknown key (`wieghts`) is kept without it.
    """
    kept = []
    for index, item in enumerate(items):
        for attempt in range(2):
            try:
                kept.append((index, getattr(model.model_validate({key: [item]}), key)[0]))
                break
            except ValidationError as exc:
                errors = exc.errors()
            if attempt or not isinstance(item, dict) or any(e["type"] != "extra_forbidden" for e in errors):
                break
            extra = {e["loc"][-1] for e in errors}
            item = {k: v for k, v in item.items() if k not in extra}
    return kept


def translate(error: Any, prefix: Loc, model: type[BaseModel]) -> tuple[Loc, str, Loc]:
    """A pydantic error as (where, message, where its line is)."""
    loc = tuple(p for p in error["loc"] if p not in (_PATH_TAG, _BLEND_TAG))
    kind, value = error["type"], error.get("input")
    if loc and loc[-1] == "[key]":  # the key itself is wrong, e.g. a number
        return prefix + loc[:-2], f"keys must be text, got {show(loc[-2])}", prefix + loc[:-1]
    if kind == "invalid_key":  # the same, for a model's own keys
        return prefix + loc[:-1], f"keys must be text, got {show(loc[-1])}", prefix + loc[:-1]
    if kind == "extra_forbidden":
        parent = loc[:-1]
        known = tuple(_model_at(model, parent).model_fields)
        return prefix + parent, unknown_name("key", str(loc[-1]), known), prefix + loc
    if kind == "missing":
        return prefix + loc[:-1], f"missing required key '{loc[-1]}'", prefix + loc[:-1]
    if kind == "string_type" and _is_a_number(value) and _NAMES & {p for p in loc if isinstance(p, str)}:
        # YAML reads `output: 2024` as a number, and 007 as 7: only quotes keep the name as written.
        message = f"expected text, got the number {show(value)} (quote a name made of digits, as in '2024')"
        return prefix + loc, message, prefix + loc
    return prefix + loc, _message(kind, value, error.get("ctx") or {}, error["msg"]), prefix + loc


# Keys whose text names a file, a folder or an output: a number there is a name that lost its quotes.
_NAMES = {"output", "content", "contents", "style", "styles", "blend", "name"}


def _is_a_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_at(model: type[BaseModel], parent: Loc) -> type[BaseModel]:
    for part in parent:
        if isinstance(part, str) and part in _NESTED:
            model = _NESTED[part]
    return model


_EXPECTED = {
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
}


def _message(kind: str, value: Any, ctx: dict[str, Any], fallback: str) -> str:
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {show(value)}"
    if kind == "greater_than":
        return f"must be greater than {format_value(ctx['gt'])}, got {show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {format_value(ctx['ge'])}, got {show(value)}"
    if kind in ("too_short", "string_too_short"):
        return "must not be empty"
    if kind == "value_error":
        return str(ctx.get("error", fallback))
    return f"{fallback[:1].lower()}{fallback[1:]}, got {show(value)}"
