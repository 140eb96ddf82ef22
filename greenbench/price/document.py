"""The JSON document of `greenbench price` (schema greenbench/price): the calculator's result with
the provider's decision (``decision``) and the bootstrap's intervals (``uncertainty``) beside it,
and, for several traces, one document per zone with the zones ranked side by side."""

from __future__ import annotations

from typing import Any

from greenbench.price import calculator as pricing
from greenbench.price import decision as decisionmod


def document(res: pricing.PricingResult, decision: decisionmod.Decision | None = None,
             uncertainty: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = pricing.to_dict(res)
    doc["drivers"] = res.slots.drivers()  # p_max against the realised p, the demand's form, the slots' notes
    doc["decision"] = None if decision is None else decisionmod.to_dict(decision)
    doc["uncertainty"] = uncertainty
    return doc


dumps = pricing.dumps  # indented JSON with no NaN or inf, ending in a newline
