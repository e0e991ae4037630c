"""`make demo`: synthetic feature traffic → bridge with faults → audit of the ground truth.

Runs on the stack `make up` started (KAFKA_BOOTSTRAP_SERVERS from .local/stack.env).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from streamchaos.audit import audit
from streamchaos.bridge import Bridge
from streamchaos.config import load_config
from streamchaos.kafkatools import create_topics, delete_topics, produce_all

RECORDS, SECONDS = 20_000, 10


def synthetic(topic: str, n: int, seconds: float):
    rng = random.Random(7)
    pause = seconds / (n / 500)
    for i in range(n):
        if i % 500 == 0:
            time.sleep(pause)
        row = {
            "user": f"u{rng.randrange(2000)}",
            "amount": round(rng.lognormvariate(3, 1), 2),
            "country": rng.choice(["DE", "FR", "US", "GB", "BR"]),
            "label": int(rng.random() < 0.03),
        }
        yield {
            "topic": topic,
            "key": row["user"].encode(),
            "value": json.dumps(row).encode(),
            "partition": i % 3,
        }


def main() -> int:
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    cfg = load_config("configs/demo.yaml")
    route = cfg.routes[0]
    bootstrap = cfg.kafka.bootstrap_servers
    delete_topics(bootstrap, [route.source, route.shadow])
    time.sleep(1)
    create_topics(bootstrap, [route.source], partitions=3)
    ledger = Path(cfg.ledger.path or "out/demo-ledger.jsonl")
    ledger.unlink(missing_ok=True)
    bridge = Bridge(cfg)
    thread = threading.Thread(target=bridge.run, kwargs={"idle_exit": 4}, daemon=True)
    thread.start()
    print(f"producing {RECORDS:,} synthetic feature records over ~{SECONDS}s ...", flush=True)
    produce_all(bootstrap, synthetic(route.source, RECORDS, SECONDS))
    thread.join(120)
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    kinds = Counter((e["type"], e["kind"]) for e in entries)
    print("\nground truth (ledger):")
    for (ftype, kind), count in sorted(kinds.items()):
        print(f"  {ftype:<14} {kind:<14} {count:>6}")
    report = audit(bootstrap, route.source, route.shadow, ledger)
    print("\n" + report.summary())
    print(f"\noutputs: ledger {ledger.resolve()}; shadow topic {route.shadow} on {bootstrap}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
