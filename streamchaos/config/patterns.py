"""Routes whose source is a pattern, made concrete: one route per topic it matches.

A pattern route (``source: ^features\\..*``, ``shadow: {topic}.shadow``) stands for every
topic the regex matches from its start (as Kafka's pattern subscriptions do), now and
later. ``expand`` turns it into concrete routes, one per matching topic, and checks them
by the same shadow-only rules as a file's routes: a topic whose route would break them
is left out, with the reason. Never matched: the experiment's own topics (every shadow,
anything ending with ``safety.shadow_suffix``, the ledger and alerts topics), Kafka's
internal topics (``__…``), and a topic a route names or an earlier pattern took.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from streamchaos.config.experiment import Config, shadow_only_problems
from streamchaos.config.route import Route


def expand(cfg: Config, topics: Iterable[str]) -> tuple[Config, list[str]]:
    """``cfg`` with each pattern route replaced by a route per matching topic in
    ``topics`` (in name order, after the concrete routes), and why any was left out."""
    fixed = [route for route in cfg.routes if not route.is_pattern]
    taken = {r.source for r in fixed} | {r.shadow for r in fixed}
    taken |= {t for t in (cfg.ledger.topic, cfg.alerts.topic) if t}
    suffix = cfg.safety.shadow_suffix
    routes, left_out = list(fixed), []
    names = sorted(set(topics))
    for route in (r for r in cfg.routes if r.is_pattern):
        regex = re.compile(route.source)
        for topic in names:
            if topic in taken or topic.endswith(suffix) or topic.startswith("__"):
                continue
            if not regex.match(topic):
                continue
            shadow = route.shadow.replace("{topic}", topic)
            concrete = Route.model_validate(
                {name: getattr(route, name) for name in Route.model_fields}
                | {"source": topic, "shadow": shadow}
            )
            trial = cfg.model_copy(update={"routes": [*routes, concrete]})
            problems = [
                p for p in shadow_only_problems(trial) if p.startswith(f"routes[{len(routes)}]")
            ]
            if problems:
                left_out.append(f"{topic} (matched {route.source}): {'; '.join(problems)}")
                continue
            routes.append(concrete)
            taken |= {topic, shadow}
    return cfg.model_copy(update={"routes": routes}), left_out
