"""Faults changed on a running bridge: asked over HTTP, made by the loop between batches.

An HTTP thread parses the request's fault, puts the change on the queue and waits; the
bridge's loop makes queued changes at the top of a turn, so a change never lands inside
a batch and the engine stays single-threaded. There the new plan is checked by the same
models as the experiment file (``config.plan``) and refused whole, with the field named,
when invalid.
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
from streamchaos.config import Config, Route
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
from streamchaos.httpserver import ControlServer, HttpError, Request
from streamchaos.ledger_topic import flush_all

log = logging.getLogger(__name__)

WAIT = 30.0  # seconds a request waits for the loop to make its change
FLUSH = 10.0  # seconds a change waits for what is in flight to land


class Busy(HttpError):
    """The loop did not take the change in time, or the bridge is stopping."""

    status = 503


def restored(cfg: Config) -> Config:
    """``cfg`` with the plan ``control.plan_file`` kept from an earlier run, if any."""
    path = cfg.control.plan_file
    if path is None:
        return cfg
    plan = load_plan(path, cfg)
    try:  # written now: a file that cannot be is found at start, not at the first change
        save_plan(path, cfg, plan or cfg)
    except OSError as exc:
        raise ConfigError(f"control.plan_file {path}: cannot write: {exc}") from exc
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
        self._lock = threading.Lock()  # the queue and ``_closed``, between the threads
        self._closed = False

    def serve_on(self, server: ControlServer) -> None:
        server.add("GET", "/faults", lambda req: (200, self._ask(self.snapshot)))
        server.add("POST", "/routes/{source}/faults", self._post)
        server.add("PUT", "/routes/{source}/faults/{name}", self._put)
        server.add("DELETE", "/routes/{source}/faults/{name}", self._delete)

    def restore_lines(self, now: float) -> None:
        """A ``plan_change`` line (action ``restore``) per route whose faults the plan file
        changed: the ledger says why the faults differ from the experiment file's."""
        if self.base.control.plan_file is None:
            return  # nothing restored (pattern routes made concrete are not a change)
        base, current = plan_of(self.base), plan_of(self.cfg)
        for source, faults in current.items():
            if faults != base.get(source):
                self._line(source, None, None, "restore", faults, "control.plan_file", now)

    def matched(self, route: Route, now: float) -> None:
        """A topic a pattern route matched is bridged: a ``plan_change`` line (action
        ``match``) with its faults, so the ledger says when each route began."""
        faults = [fault_json(f) for f in route.faults]
        self._line(route.source, None, None, "match", faults, "pattern", now)

    # -- HTTP threads -------------------------------------------------------------------

    def _post(self, req: Request) -> tuple[int, Any]:
        fault, source = parse_fault(req.json()), req.params["source"]
        return 201, self._ask(lambda now: self.add(now, source, fault, req.client))

    def _put(self, req: Request) -> tuple[int, Any]:
        body, name, source = req.json(), req.params["name"], req.params["source"]
        if isinstance(body, dict) and "name" not in body and body.get("type") != name:
            body = {**body, "name": name}  # a replacement keeps the name it replaces
        fault = parse_fault(body)
        return 200, self._ask(lambda now: self.replace(now, source, name, fault, req.client))

    def _delete(self, req: Request) -> tuple[int, Any]:
        source, name = req.params["source"], req.params["name"]
        return 200, self._ask(lambda now: self.remove(now, source, name, req.client))

    def _ask(self, change: Callable[[float], Any]) -> Any:
        """Run ``change(now)`` on the loop's thread and return what it returns. A change
        the loop did not take in time is taken back (503): it is never made later."""
        call = _Call(change)
        with self._lock:
            if self._closed:
                raise Busy("the bridge is stopping")
            self.queue.append(call)
        if not call.done.wait(WAIT):
            with self._lock:
                taken_back = call in self.queue
                if taken_back:
                    self.queue.remove(call)
            if taken_back:
                raise Busy(f"the bridge's loop did not take the change within {WAIT:.0f}s")
            call.done.wait()  # the loop is making it now: its answer comes soon
        if call.error is not None:
            raise call.error
        return call.result

    # -- the loop's thread --------------------------------------------------------------

    def serve(self, now: float) -> None:
        """Make the queued changes (the loop calls this when ``queue`` is not empty)."""
        while True:
            with self._lock:
                if not self.queue:
                    return
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
        with self._lock:
            self._closed = True
            waiting, self.queue = list(self.queue), deque()
        for call in waiting:
            call.error = Busy("the bridge is stopping")
            call.done.set()

    def add(self, now: float, source: str, fault: FaultConfig, client: str) -> dict[str, Any]:
        """Add ``fault`` to route ``source``; ``ConfigError`` when the new plan is invalid
        (nothing changed then)."""
        return self._make(now, source, "add", added(self.cfg, source, fault), None, fault, client)

    def replace(
        self, now: float, source: str, name: str, fault: FaultConfig, client: str
    ) -> dict[str, Any]:
        new = replaced(self.cfg, source, name, fault)
        return self._make(now, source, "replace", new, name, fault, client)

    def remove(self, now: float, source: str, name: str, client: str) -> dict[str, Any]:
        new = removed(self.cfg, source, name)
        return self._make(now, source, "remove", new, name, None, client)

    def _make(
        self,
        now: float,
        source: str,
        action: str,
        new: Config,
        name: str | None,
        fault: FaultConfig | None,
        client: str,
    ) -> dict[str, Any]:
        """Put the checked plan ``new`` in force: stage ``name`` out (its episode ended,
        what it held produced), ``fault``'s stage in, then the ledger line and the file."""
        state = self.routes[source]
        pipeline = state.pipeline
        if pipeline is None:
            pipeline = Pipeline(source, [], self.cfg.seed, state.ctx, state.clock)
            state.pipeline = pipeline
            pipeline.paused = self.paused()
        if name is not None:  # what is in flight lands first: the ending episode's counts
            flush_all(self.fwd.producer, self.journal.ledger, FLUSH)  # are complete
        self.journal.settle()
        released, at, old = 0, None, None
        if name is not None:
            at, old, held = pipeline.remove(name, now)
            if old.in_episode:
                self.journal.episode(source, old, "episode_end", now, reason=f"{action}d")
            self.journal.retire(source, old)
            released = self.fwd.emit(state, held, now)
            self.fwd.holds.removed(source)  # and what waits in its long-hold topic
        if fault is not None:
            pipeline.add(fault, now, at)
            self.journal.metrics.fault_series(self.cfg.experiment, source, fault)
        self.journal.watch(source, pipeline)
        self.fwd.refresh()
        self.cfg = new  # in force from here: GET /faults shows it
        label = fault.label if fault is not None else name
        kind = fault.type if fault is not None else old.config.type if old else None
        config = fault_json(fault) if fault is not None else None
        digest = self._line(source, label, kind, action, config, client, now)
        answer: dict[str, Any] = {"action": action, "route": source, "fault": label}
        answer |= {"plan_hash": digest, "released": released}
        path = self.cfg.control.plan_file
        if path is not None:
            try:
                save_plan(path, self.base, self.cfg)
            except OSError as exc:  # the change stands; a restart would not keep it
                log.error("control.plan_file %s: cannot write: %s", path, exc)
                answer["warning"] = f"control.plan_file {path}: not written ({exc})"
        done = {"add": "added", "replace": "replaced", "remove": "removed"}[action]
        log.warning(
            "%s: fault %s %s by %s (plan %s, %d held records released)",
            *(source, label, done, client, digest, released),
        )
        return answer

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
                        "active": stage.in_episode,
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
