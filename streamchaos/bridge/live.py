"""Faults changed on a running bridge: asked over HTTP, made by the loop between batches.

An HTTP thread validates the request, puts a change on the queue and waits; the bridge's
loop makes queued changes at the top of a turn, so a change never lands inside a batch
and the engine stays single-threaded. A change is checked by the same models as the
experiment file (``config.plan``) and refused whole, with the field named, when invalid.
A removed or replaced fault's episode ends (``reason: removed``/``replaced``) and what it
held is released and produced; an added fault's schedule counts from the change. Each
change writes a ``plan_change`` ledger line and, with ``control.plan_file``, the plan file.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from streamchaos.bridge.forward import Forwarder
from streamchaos.bridge.journal import Journal
from streamchaos.bridge.setup import RouteState
from streamchaos.config import Config
from streamchaos.config.plan import (
    added,
    fault_json,
    load_plan,
    parse_fault,
    plan_hash,
    plan_of,
    removed,
    replaced,
    save_plan,
)
from streamchaos.engine import Pipeline
from streamchaos.errors import ConfigError
from streamchaos.faults.config import FaultConfig
from streamchaos.httpserver import ControlServer, Request

log = logging.getLogger(__name__)

WAIT = 30.0  # seconds a request waits for the loop to make its change


class Busy(ConfigError):
    """The loop did not take the change in time, or the bridge is stopping."""

    status = 503


def restored(cfg: Config) -> Config:
    """``cfg`` with the plan ``control.plan_file`` kept from an earlier run, if any."""
    path = cfg.control.plan_file
    plan = load_plan(path, cfg) if path is not None else None
    if plan is None:
        return cfg
    log.info("control.plan_file %s: plan %s restored", path, plan_hash(plan))
    return plan


class _Call:
    def __init__(self, change: Callable[[float], Any]) -> None:
        self.change = change
        self.done = threading.Event()
        self.result: Any = None
        self.error: Exception | None = None


class LivePlan:
    """The plan in force, and the changes waiting for the loop."""

    def __init__(
        self,
        base: Config,
        cfg: Config,
        routes: dict[str, RouteState],
        fwd: Forwarder,
        journal: Journal,
        paused: Callable[[], bool],
    ) -> None:
        self.base, self.cfg = base, cfg  # the experiment file's plan, and the one in force
        self.routes, self.fwd, self.journal, self.paused = routes, fwd, journal, paused
        self.queue: deque[_Call] = deque()
        self._closed = False

    def serve_on(self, server: ControlServer) -> None:
        server.add("GET", "/faults", lambda req: (200, self._ask(self.snapshot)))
        server.add("POST", "/routes/{source}/faults", self._post)
        server.add("PUT", "/routes/{source}/faults/{name}", self._put)
        server.add("DELETE", "/routes/{source}/faults/{name}", self._delete)

    def restore_lines(self, now: float) -> None:
        """A ``plan_change`` line (action ``restore``) per route whose faults the plan file
        changed: the ledger says why the faults differ from the experiment file's."""
        base, current = plan_of(self.base), plan_of(self.cfg)
        for source, faults in current.items():
            if faults != base.get(source):
                self._line(source, None, None, "restore", faults, "control.plan_file", now)

    # -- HTTP threads -------------------------------------------------------------------

    def _post(self, req: Request) -> tuple[int, Any]:
        fault = parse_fault(req.json())
        source = req.params["source"]
        return 201, self._ask(lambda now: self.change(now, source, "add", fault, None, req.client))

    def _put(self, req: Request) -> tuple[int, Any]:
        body, name = req.json(), req.params["name"]
        if isinstance(body, dict) and "name" not in body and body.get("type") != name:
            body = {**body, "name": name}  # a replacement keeps the name it replaces
        fault = parse_fault(body)
        source = req.params["source"]
        return 200, self._ask(
            lambda now: self.change(now, source, "replace", fault, name, req.client)
        )

    def _delete(self, req: Request) -> tuple[int, Any]:
        source, name = req.params["source"], req.params["name"]
        return 200, self._ask(
            lambda now: self.change(now, source, "remove", None, name, req.client)
        )

    def _ask(self, change: Callable[[float], Any]) -> Any:
        """Run ``change(now)`` on the loop's thread and return what it returns."""
        call = _Call(change)
        if self._closed:
            raise Busy("the bridge is stopping")
        self.queue.append(call)
        if not call.done.wait(WAIT):
            raise Busy(f"the bridge's loop did not take the change within {WAIT:.0f}s")
        if call.error is not None:
            raise call.error
        return call.result

    # -- the loop's thread --------------------------------------------------------------

    def serve(self, now: float) -> None:
        """Make the queued changes (the loop calls this when ``queue`` is not empty)."""
        while self.queue:
            call = self.queue.popleft()
            try:
                call.result = call.change(now)
            except ConfigError as exc:
                call.error = exc
            except Exception as exc:  # a bug: the request fails (500), the bridge goes on
                log.exception("control: a change failed")
                call.error = exc
            finally:
                call.done.set()

    def close(self) -> None:
        """No more changes: a request still waiting is answered 503."""
        self._closed = True
        while self.queue:
            call = self.queue.popleft()
            call.error = Busy("the bridge is stopping")
            call.done.set()

    def change(
        self,
        now: float,
        source: str,
        action: str,
        fault: FaultConfig | None,
        name: str | None,
        client: str,
    ) -> dict[str, Any]:
        """Add, replace or remove one fault of route ``source`` (``ConfigError`` when the
        new plan is invalid: nothing changed then)."""
        if action == "add" and fault is not None:
            new = added(self.cfg, source, fault)
        elif action == "replace" and fault is not None and name is not None:
            new = replaced(self.cfg, source, name, fault)
        elif action == "remove" and name is not None:
            new = removed(self.cfg, source, name)
        else:
            raise ConfigError(f"unknown change {action!r}")
        state = self.routes[source]
        pipeline = state.pipeline
        if pipeline is None:
            pipeline = state.pipeline = Pipeline(source, [], self.cfg.seed, state.ctx)
            pipeline.paused = self.paused()
        self.journal.settle()  # the old stage's counts are complete before it goes
        released, at, old = 0, None, None
        if name is not None:
            at, old, held = pipeline.remove(name, now)
            if old.intensity > 0:
                self.journal.episode(source, old, "episode_end", now, reason=f"{action}d")
            self.journal.retire(source, old)
            released = self.fwd.emit(state, held, now)
        if fault is not None:
            pipeline.add(fault, now, at)
        self.journal.watch(source, pipeline)
        self.fwd.refresh()
        self.cfg = new
        label = fault.label if fault is not None else name
        config = fault_json(fault) if fault is not None else None
        kind = fault.type if fault is not None else old.config.type if old else None
        digest = self._line(source, label, kind, action, config, client, now)
        if self.cfg.control.plan_file is not None:
            save_plan(self.cfg.control.plan_file, self.base, self.cfg)
        log.warning(
            "%s: fault %s %s by %s (plan %s, %d held records released)",
            source,
            label,
            f"{action}d" if action != "add" else "added",
            client,
            digest,
            released,
        )
        return {
            "action": action,
            "route": source,
            "fault": label,
            "plan_hash": digest,
            "released": released,
        }

    def _line(
        self,
        source: str,
        fault: str | None,
        type_: str | None,
        action: str,
        config: Any,
        client: str,
        now: float,
    ) -> str:
        """The ``plan_change`` ledger line; returns the new plan's hash."""
        digest = plan_hash(self.cfg)
        detail = {"action": action, "config": config, "plan_hash": digest, "client": client}
        at_ms = self.journal.at_ms(now)
        self.journal.ledger.event(source, fault, type_, "plan_change", at_ms, detail)
        return digest

    def snapshot(self, now: float) -> dict[str, Any]:
        """Every route's faults: config, episode state, injections and held records."""
        routes = []
        for route in self.cfg.routes:
            pipeline = self.routes[route.source].pipeline
            stages = {s.name: s for s in pipeline.stages} if pipeline is not None else {}
            faults = []
            for fault in route.faults:
                stage = stages[fault.label]
                faults.append(
                    {
                        "name": fault.label,
                        "type": fault.type,
                        "config": fault_json(fault),
                        "active": stage.intensity > 0,
                        "intensity": round(stage.intensity, 6),
                        "injected": stage.total,
                        "episode": stage.episode_stats(),
                        "held": pipeline.held(stage) if pipeline is not None else 0,
                    }
                )
            routes.append({"source": route.source, "shadow": route.shadow, "faults": faults})
        return {
            "experiment": self.cfg.experiment,
            "plan_hash": plan_hash(self.cfg),
            "paused": self.paused(),
            "routes": routes,
        }
