"""Routes whose source is a pattern, made concrete: one route per topic it matches.

A pattern route (``source: ^features\\..*``, ``shadow: {topic}.shadow``) stands for every
topic the regex matches from its start (as Kafka's pattern subscriptions do), now and
later; a topic two patterns match goes to the first. ``expand`` turns it into concrete
routes, one per matching topic, and checks each against every route there already by
the same shadow-only rules as a file's routes: a topic whose route would break them, or
whose shadow name would not be a topic name, is left out, with the reason. Never
matched: the experiment's own topics (every shadow, anything ending with
``safety.shadow_suffix``, the ledger and alerts topics), names starting with ``_``
(Kafka's and the registry's internal topics), and a topic a route names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError

from streamchaos.config.experiment import Config, shadow_only_problems
from streamchaos.config.load import format_validation_error
from streamchaos.config.route import Route


def expand(
    cfg: Config, topics: Iterable[str], running: list[Route] | None = None
) -> tuple[Config, list[str]]:
    """``cfg`` with each pattern route replaced by a route per matching topic in
    ``topics`` (in name order, after the concrete routes), and why any was left out.
    ``running``: concrete routes already made of earlier topics, kept and checked
    against (by default, ``cfg``'s own concrete routes)."""
    fixed = running if running is not None else [r for r in cfg.routes if not r.is_pattern]
    taken = {r.source for r in fixed} | {r.shadow for r in fixed}
    taken |= {t for t in (cfg.ledger.topic, cfg.ledger.clock_topic, cfg.alerts.topic) if t}
    suffix = cfg.safety.shadow_suffix
    routes, left_out = list(fixed), []
    for topic in sorted(set(topics)):
        if topic in taken or topic.endswith(suffix) or topic.startswith("_"):
            continue
        pattern = next((r for r in cfg.routes if r.is_pattern and re.match(r.source, topic)), None)
        if pattern is None:
            continue
        why = _problem(cfg, routes, pattern, topic)
        if isinstance(why, str):
            left_out.append(f"{topic} (matched {pattern.source}): {why}")
            continue
        routes.append(why)
        taken |= {topic, why.shadow}
    return cfg.model_copy(update={"routes": routes}), left_out


def _problem(cfg: Config, routes: list[Route], pattern: Route, topic: str) -> Route | str:
    """The concrete route of ``topic``, or why it cannot be one beside ``routes``."""
    fields = {name: getattr(pattern, name) for name in Route.model_fields}
    shadow = pattern.shadow.replace("{topic}", topic)
    try:
        route = Route.model_validate(fields | {"source": topic, "shadow": shadow})
    except ValidationError as exc:
        return format_validation_error(exc).replace("\n", "; ")
    before = set(shadow_only_problems(cfg.model_copy(update={"routes": routes})))
    after = shadow_only_problems(cfg.model_copy(update={"routes": [*routes, route]}))
    new = [p for p in after if p not in before]
    return "; ".join(new) if new else route
