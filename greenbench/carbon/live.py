"""The current grid carbon intensity from a live API, only when the user asks (``--live``).

Two providers: Electricity Maps (any zone; token from $ELECTRICITYMAPS_TOKEN) and the UK Carbon
Intensity API of National Grid ESO (Great Britain only, no token). Nothing here runs at import,
every request has a timeout, and every failure is one LiveCarbonError line. The HTTP layer is a
plain function so tests replace it and never touch the network.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from greenbench.errors import GreenbenchError

TOKEN_ENV = "ELECTRICITYMAPS_TOKEN"
EM_URL = "https://api.electricitymap.org/v3/carbon-intensity/latest"
UK_URL = "https://api.carbonintensity.org.uk/intensity"
PROVIDERS = ("auto", "electricitymaps", "uk")
TIMEOUT_S = 10.0

# (url, headers, timeout_s) -> response body; raises urllib.error.URLError / HTTPError / OSError.
Fetch = Callable[[str, dict, float], bytes]


class LiveCarbonError(GreenbenchError):
    """The live intensity could not be had; one line saying why and what to do instead."""


@dataclass(frozen=True)
class LiveIntensity:
    gco2e_per_kwh: float
    datetime_utc: str  # the period the provider says the figure is for
    zone: str
    basis: str | None  # "lca" | "direct" | None when the provider does not say
    provider: str
    estimated: bool | None  # the provider's own flag, None when it gives none
    source: str  # one line for reports, with the attribution the provider asks for


def _urlopen(url: str, headers: dict, timeout_s: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "greenbench", **headers})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # https only: the URLs are constants
        return resp.read()


def fetch_live(zone: str, *, provider: str = "auto", basis: str = "lca", fetch: Fetch | None = None,
               timeout_s: float = TIMEOUT_S, env: Mapping[str, str] | None = None) -> LiveIntensity:
    """The latest intensity of ``zone``. ``auto``: Electricity Maps when a token is set, else the
    UK API for GB, else an error naming the token to set."""
    token = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    if provider not in PROVIDERS:
        raise LiveCarbonError(f"unknown live provider {provider!r} (use {', '.join(PROVIDERS)})")
    if provider == "auto":
        provider = "electricitymaps" if token else "uk" if zone.upper() == "GB" else ""
        if not provider:
            raise LiveCarbonError(f"live intensity for zone {zone} needs an Electricity Maps token: set "
                                  f"${TOKEN_ENV} (the UK Carbon Intensity API needs none but covers GB only)")
    fetch = fetch or _urlopen
    if provider == "uk":
        if zone.upper() != "GB":
            raise LiveCarbonError(f"the UK Carbon Intensity API covers GB only, not {zone}; "
                                  f"use --live-provider electricitymaps with ${TOKEN_ENV}")
        doc = _get(fetch, UK_URL, {}, timeout_s, "UK Carbon Intensity API")
        return _parse_uk(doc)
    if not token:
        raise LiveCarbonError(f"Electricity Maps needs a token: set ${TOKEN_ENV} (nothing was sent)")
    query = {"zone": zone} | ({"emissionFactorType": "direct"} if basis == "direct" else {})
    url = f"{EM_URL}?{urllib.parse.urlencode(query)}"
    doc = _get(fetch, url, {"auth-token": token}, timeout_s, "Electricity Maps")
    return _parse_em(doc, zone, basis)


def _get(fetch: Fetch, url: str, headers: dict, timeout_s: float, name: str) -> dict:
    try:
        body = fetch(url, headers, timeout_s)
    except urllib.error.HTTPError as e:
        hint = {401: "the token was refused; check it", 403: "the token was refused; check it",
                404: "the zone is unknown to the provider", 429: "rate-limited; try again later"}
        raise LiveCarbonError(f"{name}: HTTP {e.code} ({hint.get(e.code, 'request failed')}); "
                              "without --live the bundled 2023 trace is used") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        why = getattr(e, "reason", None) or e.__class__.__name__
        raise LiveCarbonError(f"{name}: cannot connect ({why}, timeout {timeout_s:g} s); "
                              "check the network, or drop --live to use the bundled 2023 trace") from None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise LiveCarbonError(f"{name}: the answer is not JSON; try again later") from None
    if not isinstance(doc, dict):
        raise LiveCarbonError(f"{name}: unexpected answer (not a JSON object)")
    return doc


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2000:
        raise LiveCarbonError(f"{name}: no usable intensity in the answer (got {value!r})")
    return float(value)


def _parse_em(doc: dict, zone: str, basis: str) -> LiveIntensity:
    value = _number(doc.get("carbonIntensity"), "Electricity Maps")
    factor = doc.get("emissionFactorType")
    got = basis if factor is None else {"lifecycle": "lca", "direct": "direct"}.get(str(factor))
    return LiveIntensity(value, str(doc.get("datetime", "")), str(doc.get("zone", zone)), got,
                         "electricitymaps", doc.get("isEstimated"),
                         f"Electricity Maps API (live, {got or 'basis not given'}), {doc.get('datetime', '')}")


def _parse_uk(doc: dict) -> LiveIntensity:
    try:
        period = doc["data"][0]
        actual, forecast = period["intensity"].get("actual"), period["intensity"].get("forecast")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise LiveCarbonError("UK Carbon Intensity API: unexpected answer (no data[0].intensity)") from None
    estimated = actual is None  # the latest half-hour often has only the forecast yet
    value = _number(forecast if estimated else actual, "UK Carbon Intensity API")
    kind = "forecast" if estimated else "actual"
    return LiveIntensity(value, str(period.get("from", "")), "GB", None, "uk", estimated,
                         f"UK Carbon Intensity API, National Grid ESO (live {kind}, CC BY 4.0), "
                         f"{period.get('from', '')}")
