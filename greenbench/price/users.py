"""The users file: the user types a green tier is priced for (shared/docs/pricing-model.md §2-§3, §6).

A YAML document, read through ``greenbench.safeload`` (bounded size, nesting and aliases) and
validated with pydantic (unknown keys refused); every check is linear in the number of types.
Every error is one line naming the file, the user type and the key::

    version: 1
    currency: USD                # a label for V, P and the prices; nothing is converted
    subscribers: 10000           # population size for totals (optional; CLI --subscribers)
    standard_price: null         # P per billing period; null: each type's full valuation N·V·U_H
    user_types:
      - name: accuracy-sensitive
        share: 0.5               # s_i; shares add up to 1
        accuracy_weight: 0.8     # w_A (latency weight is 1 - w_A)
        consciousness: 0.1       # e in [0, 1]
        value_per_request: 0.002 # V: value of one request served perfectly (U = 1), at most 1e6
        requests_per_period: 3000  # N: requests per billing period (a month), at most 1e12
        accuracy_min: 0.5        # A_min  (optional; default: min over the profile's frontier)
        accuracy_sat: 0.97       # A_sat  (optional; default: max over the frontier)
        latency_sat_ms: 5        # L_sat  (optional; default: min over the frontier)
        latency_max_ms: 200      # L_max  (optional; default: max over the frontier)

Thresholds in other units, each read only when the profile's quality metric or the latency kind
asked for is theirs (docs/pricing.md, "The users file"): ``exact_match_min``/``exact_match_sat``
(higher is better, in [0, 1]); ``perplexity_sat``/``perplexity_max`` (lower is better: satisfied at
or below PPL_sat, worthless at or above PPL_max); ``ttft_sat_ms``/``ttft_max_ms`` and
``tpot_sat_ms``/``tpot_max_ms`` for ``--latency-kind ttft`` and ``tpot`` (``latency_*_ms`` are the
batch latency of a batched model and the end-to-end latency of a generated request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from greenbench.errors import GreenbenchError
from greenbench.safeload import InputError, load_yaml, read_text

SCHEMA_VERSION = 1
EXAMPLE_NAME = "users_example.yaml"
SHARE_TOLERANCE = 1e-6
# Upper bounds far above any real service, low enough that every product the calculator forms
# (subscribers x N x V, N x energy x intensity) stays a finite float.
MAX_VALUE_PER_REQUEST = 1e6  # currency per request
MAX_REQUESTS_PER_PERIOD = 1e12  # per user per billing period
MAX_SUBSCRIBERS = 10**12
MAX_STANDARD_PRICE = 1e15  # currency per user per billing period
# ~130 bytes a type: room for some 250,000 user types (a drawn population is built in memory, not read)
MAX_USERS_BYTES = 32 * 2**20

# The users file's thresholds of each quality metric: (the key where the term is 0, the key where it
# is 1). Higher is better for a share (A_min, A_sat); lower for perplexity (PPL_max, PPL_sat).
QUALITY_KEYS = {"accuracy": ("accuracy_min", "accuracy_sat"),
                "exact_match": ("exact_match_min", "exact_match_sat"),
                "perplexity": ("perplexity_max", "perplexity_sat")}
# ... and of each latency kind (L_max, L_sat): e2e (a batch's, or a request's end to end), TTFT, TPOT.
LATENCY_KEYS = {"e2e": ("latency_max_ms", "latency_sat_ms"),
                "ttft": ("ttft_max_ms", "ttft_sat_ms"),
                "tpot": ("tpot_max_ms", "tpot_sat_ms")}
# Thresholds beyond the four every Users has as attributes (kept in ``Users.more``).
MORE_THRESHOLDS = ("exact_match_min", "exact_match_sat", "perplexity_sat", "perplexity_max",
                   "ttft_sat_ms", "ttft_max_ms", "tpot_sat_ms", "tpot_max_ms")


class UsersError(GreenbenchError):
    """A users file is missing, unreadable or invalid (one line naming file, user type and key)."""


class UserType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    share: float = Field(gt=0, le=1)
    accuracy_weight: float = Field(ge=0, le=1)
    consciousness: float = Field(ge=0, le=1)
    value_per_request: float = Field(ge=0, le=MAX_VALUE_PER_REQUEST)
    requests_per_period: float = Field(gt=0, le=MAX_REQUESTS_PER_PERIOD)
    accuracy_min: float | None = Field(default=None, ge=0, le=1)
    accuracy_sat: float | None = Field(default=None, ge=0, le=1)
    latency_sat_ms: float | None = Field(default=None, ge=0)
    latency_max_ms: float | None = Field(default=None, gt=0)
    exact_match_min: float | None = Field(default=None, ge=0, le=1)
    exact_match_sat: float | None = Field(default=None, ge=0, le=1)
    perplexity_sat: float | None = Field(default=None, ge=1, le=1e12)  # a perplexity is at least 1
    perplexity_max: float | None = Field(default=None, ge=1, le=1e12)
    ttft_sat_ms: float | None = Field(default=None, ge=0)
    ttft_max_ms: float | None = Field(default=None, gt=0)
    tpot_sat_ms: float | None = Field(default=None, ge=0)
    tpot_max_ms: float | None = Field(default=None, gt=0)


class UsersDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    version: int = SCHEMA_VERSION
    currency: str = "USD"
    subscribers: int | None = Field(default=None, gt=0, le=MAX_SUBSCRIBERS)
    standard_price: float | None = Field(default=None, gt=0, le=MAX_STANDARD_PRICE)
    user_types: list[UserType] = Field(min_length=1)


@dataclass(frozen=True)
class Users:
    """User types as arrays (one row per type, or per drawn user): the vectorised form."""

    names: tuple[str, ...]
    weight: np.ndarray  # s_i (sums to 1)
    accuracy_weight: np.ndarray  # w_A
    consciousness: np.ndarray  # e
    value_per_request: np.ndarray  # V
    requests_per_period: np.ndarray  # N
    accuracy_min: np.ndarray  # NaN: from the profile
    accuracy_sat: np.ndarray
    latency_sat_ms: np.ndarray
    latency_max_ms: np.ndarray
    currency: str = "USD"
    subscribers: int | None = None
    standard_price: float | None = None
    source: str = ""
    # thresholds in other units (MORE_THRESHOLDS), by key; a key that is not here is NaN for every row
    more: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def threshold(self, key: str) -> np.ndarray:
        """One threshold of every row (NaN: not in the file, taken from the profile's frontier)."""
        if key in _ARRAYS:
            return getattr(self, key)
        if key not in MORE_THRESHOLDS:
            raise KeyError(key)
        v = self.more.get(key)
        return np.full(len(self), np.nan) if v is None else v

    def take(self, index: np.ndarray, weight: np.ndarray) -> Users:
        """Rows ``index`` (e.g. drawn users) with new weights."""
        index = np.asarray(index)
        arr = {k: getattr(self, k)[index] for k in _ARRAYS if k != "weight"}
        return Users(names=tuple(self.names[i] for i in index), weight=np.asarray(weight, float),
                     currency=self.currency, subscribers=self.subscribers,
                     standard_price=self.standard_price, source=self.source,
                     more={k: v[index] for k, v in self.more.items()}, **arr)


_ARRAYS = ("weight", "accuracy_weight", "consciousness", "value_per_request", "requests_per_period",
           "accuracy_min", "accuracy_sat", "latency_sat_ms", "latency_max_ms")


def example_path() -> Path:
    """The users file shipped with greenbench (the default of ``--users``)."""
    return Path(str(resources.files("greenbench.data").joinpath(EXAMPLE_NAME)))


def _where(doc: object, loc: tuple) -> str:
    """'user type NAME: key' (or 'key') for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "user_types" and isinstance(loc[1], int):
        types = doc.get("user_types") if isinstance(doc, dict) else None
        name = None
        if isinstance(types, list) and loc[1] < len(types) and isinstance(types[loc[1]], dict):
            name = types[loc[1]].get("name")
        who = f"user type {name!r}" if name else f"user type #{loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{who}: key {rest!r}" if rest else who
    return f"key {'.'.join(str(p) for p in loc)!r}" if loc else "document"


def parse_users(doc: object, source: str) -> Users:
    if not isinstance(doc, dict):
        raise UsersError(f"{source}: not a users file (expected a mapping with 'user_types')")
    try:
        parsed = UsersDoc.model_validate(doc)
    except ValidationError as e:
        first = e.errors()[0]
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "is not allowed (allowed: " + ", ".join(
                (UserType if "user_types" in first["loc"][:1] and len(first["loc"]) > 2 else UsersDoc)
                .model_fields) + ")"
        elif first["type"] == "missing":
            msg = "is required"
        msg = msg.replace("Value error, ", "")
        msg = msg[:1].lower() + msg[1:]
        raise UsersError(f"{source}: {_where(doc, tuple(first['loc']))}: {msg}") from None
    if parsed.version != SCHEMA_VERSION:
        raise UsersError(f"{source}: users file version {parsed.version} is not supported "
                         f"(this greenbench reads {SCHEMA_VERSION})")
    seen: set[str] = set()  # one pass: names.count() per name was quadratic (20,000 types took 11 s)
    for t in parsed.user_types:
        if t.name in seen:
            raise UsersError(f"{source}: user type {t.name!r} appears more than once")
        seen.add(t.name)
    total = sum(t.share for t in parsed.user_types)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise UsersError(f"{source}: the shares of the user types add up to {total:g}, not 1 (key 'share')")
    for t in parsed.user_types:
        if t.accuracy_min is not None and t.accuracy_sat is not None and t.accuracy_sat <= t.accuracy_min:
            raise UsersError(f"{source}: user type {t.name!r}: key 'accuracy_sat' ({t.accuracy_sat}) "
                             f"must be above accuracy_min ({t.accuracy_min})")
        if t.latency_sat_ms is not None and t.latency_max_ms is not None and t.latency_max_ms <= t.latency_sat_ms:
            raise UsersError(f"{source}: user type {t.name!r}: key 'latency_max_ms' ({t.latency_max_ms}) "
                             f"must be above latency_sat_ms ({t.latency_sat_ms})")
        # the worthless point beyond the satisfaction point, in each metric's direction
        for worse, better, above in (("exact_match_min", "exact_match_sat", True),
                                     ("perplexity_max", "perplexity_sat", False),
                                     ("ttft_max_ms", "ttft_sat_ms", False), ("tpot_max_ms", "tpot_sat_ms", False)):
            w, b = getattr(t, worse), getattr(t, better)
            if w is not None and b is not None and (b <= w if above else w <= b):
                key, other = (better, worse) if above else (worse, better)
                raise UsersError(f"{source}: user type {t.name!r}: key {key!r} ({getattr(t, key)}) "
                                 f"must be above {other} ({getattr(t, other)})"
                                 + ("" if above else " (lower is better: satisfied at or below the _sat value)"))
    # one canonical order (by name), so that results never depend on the file's order
    types = sorted(parsed.user_types, key=lambda t: t.name)

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if getattr(t, key) is None else float(getattr(t, key)) for t in types])

    return Users(
        names=tuple(t.name for t in types),
        weight=col("share") / total,
        **{k: col(k) for k in _ARRAYS[1:]},
        currency=parsed.currency, subscribers=parsed.subscribers,
        standard_price=parsed.standard_price, source=source,
        more={k: col(k) for k in MORE_THRESHOLDS if any(getattr(t, k) is not None for t in types)},
    )


def load_users(path: Path | str | None = None) -> Users:
    """Read a users file (default: the shipped example); raises UsersError with one line."""
    path = Path(path) if path is not None else example_path()
    try:
        doc = load_yaml(read_text(path, what="users file", max_bytes=MAX_USERS_BYTES), str(path))
    except InputError as e:
        raise UsersError(str(e)) from None
    return parse_users(doc, str(path))
