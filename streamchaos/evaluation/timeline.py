"""The scorecard's picture: fault episodes as bands, alerts as marks (matplotlib, optional).

``pip install 'streamchaos[plot]'`` brings matplotlib; without it ``write_timeline`` says
so instead of failing the whole ``score`` command.
"""

from __future__ import annotations

from pathlib import Path

from streamchaos.errors import StreamChaosError
from streamchaos.evaluation.alerts import Alert
from streamchaos.evaluation.scorecard import Scorecard


def write_timeline(card: Scorecard, alerts: list[Alert], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise StreamChaosError(
            "the timeline needs matplotlib: pip install 'streamchaos[plot]'"
        ) from exc
    rows = card.results
    t0 = card.run[0]  # the origin the scorecard's table uses too
    names = list(dict.fromkeys(f"{r.episode.type}:{r.episode.fault}" for r in rows))
    ypos = {name: len(names) - 1 - i for i, name in enumerate(names)}  # first on top
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.55 * max(1, len(names))))
    for r in rows:
        y = ypos[f"{r.episode.type}:{r.episode.fault}"]
        color = "tab:green" if r.detected else "tab:red"
        ax.barh(
            y,
            r.episode.end - r.episode.start,
            left=r.episode.start - t0,
            height=0.5,
            color=color,
            alpha=0.35,
        )
        ax.barh(
            y,
            r.window[1] - r.window[0],
            left=r.window[0] - t0,
            height=0.5,
            fill=False,
            edgecolor=color,
            linestyle="--",
            linewidth=0.8,
        )
    for a in alerts:
        ax.axvline(a.at - t0, color="black", linewidth=0.8, alpha=0.7)
    ax.set_yticks([ypos[n] for n in names], names)
    ax.set_xlabel(
        "seconds since the run's start (bands: episodes, dashed: scoring windows, "
        "lines: alerts; green detected, red missed)"
    )
    recall = "-" if card.recall is None else f"{card.recall:.2f}"
    ax.set_title(f"recall {recall}, false alarms {card.false_alarms}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
