"""How an evaluation reads: the terminal tables and the plot of ``gameadapt evaluate``.

The first table is the experience axis (episode *n*+1's return after *n* episodes on the
variant), one row per method and action mode, with the game's reference policy as the upper
bound; the success rates follow where the game defines success, then the gradient family's
per-step columns. Flags: ``*`` a budget beyond the episodes a recurrent or context method was
trained to carry its memory over; ``†`` a budget too small for a gradient method's advantages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import GameadaptError
from ..tables import format_table

BEYOND_TRIAL, THIN_DATA = "*", "†"


def format_results(result: dict[str, Any]) -> str:
    """The terminal tables of an evaluation result (see the module doc)."""
    agents = result.get("agents") or []
    whose = f"{agents[0]}'s " if agents else ""
    where = (f"{result['tasks']} {result['split']} variants, {len(result['seeds'])} seed(s), "
             f"± std over seeds")
    if result.get("fixed"):
        where += f"; with {', '.join(result['fixed'])} in every variant"
    if len(agents) > 1:
        where += f"; one shared policy drives {', '.join(agents)}"
    parts = [f"{result['game']}: mean {whose}return of episode n+1 after n episodes on the "
             f"variant ({result['trials']} trials per variant; {where})",
             _experience_table(result, "return")]
    if result.get("success_means"):
        parts += [f"\nsuccess rate ({result['success_means']})",
                  _experience_table(result, "success")]
    parts += _footnotes(result)
    steps = _steps_table(result)
    if steps:
        parts += [f"\nper inner step (gradient methods): mean {whose}return on "
                  f"{result['episodes']} episodes per variant, adapted on the same number, "
                  f"sampled actions", steps]
    return "\n".join(parts)


def _experience_table(result: dict[str, Any], quantity: str) -> str:
    budgets = result["budgets"]
    headers = ["method", "actions"] + [f"n={n}" for n in budgets]
    rows = []
    for method, data in result["methods"].items():
        for mode, curve in data["experience"].items():
            values = curve[quantity]
            if values is None:
                continue
            cells = [_cell(m, s, quantity) + _flag(data, n)
                     for n, m, s in zip(budgets, values["mean"], values["std"])]
            rows.append([_method_label(method, data), mode] + cells)
    reference = result.get("reference")
    if reference and reference.get(quantity):
        value = reference[quantity]
        rows.append(["reference", "sees the variant"]
                    + [_cell(value["mean"][0], value["std"][0], quantity)] * len(budgets))
    return format_table(headers, rows)


def _method_label(method: str, data: dict[str, Any]) -> str:
    tuned = data.get("finetune_lr")
    return f"{method} (lr {tuned['chosen']:g})" if tuned else method


def _cell(mean: float, std: float, quantity: str) -> str:
    if quantity == "success":
        return f"{mean:.0%} ± {std:.0%}"
    return f"{mean:.2f} ± {std:.2f}"


def _flag(data: dict[str, Any], budget: int) -> str:
    if "trial_episodes" in data and budget + 1 > data["trial_episodes"]:
        return BEYOND_TRIAL
    if data["family"] == "gradient" and budget == 1:
        return THIN_DATA
    return ""


def _footnotes(result: dict[str, Any]) -> list[str]:
    notes = []
    methods = result["methods"]
    trained: dict[int, list[str]] = {}
    for method, data in methods.items():
        if "trial_episodes" in data:
            trained.setdefault(data["trial_episodes"], []).append(method)
    for episodes, names in trained.items():
        notes.append(f"{BEYOND_TRIAL} beyond the {episodes} episode(s) per trial "
                     f"{', '.join(names)} {'was' if len(names) == 1 else 'were'} trained on "
                     f"(the memory was never carried that far in training)")
    if any(d["family"] == "gradient" for d in methods.values()) and 1 in result["budgets"]:
        notes.append(f"{THIN_DATA} one episode: the per-task baseline of the gradient methods "
                     f"can fit its own returns, so their advantages carry little signal")
    tuned = {m: d["finetune_lr"] for m, d in methods.items() if d.get("finetune_lr")}
    if tuned:
        grid = ", ".join(f"{lr:g}" for lr in next(iter(tuned.values()))["grid"])
        chosen = ", ".join(f"{m} {t['chosen']:g}" for m, t in tuned.items())
        notes.append(f"baselines are fine-tuned at their own best inner learning rate of "
                     f"{grid}, chosen on training variants: {chosen}")
    return notes


def _steps_table(result: dict[str, Any]) -> str | None:
    steps = result["steps"]
    rows = [[_method_label(method, data)] + [f"{m:.2f} ± {s:.2f}" for m, s in
                                              zip(data["mean"], data["std"])]
            for method, data in result["methods"].items() if data["family"] == "gradient"]
    if not rows:
        return None
    headers = ["method"] + [("before" if k == 0 else f"after {k} step" + ("s" if k > 1 else ""))
                            for k in steps]
    return format_table(headers, rows)


def require_pyplot() -> Any:
    """matplotlib's pyplot (Agg backend), or a one-line error if it is not installed."""
    try:  # matplotlib takes a while to import: only when a plot is asked for
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        raise GameadaptError("--plot needs matplotlib, a dependency of gameadapt that is "
                             "missing here: pip install matplotlib") from None
    matplotlib.use("Agg")
    return plt


def plot_results(result: dict[str, Any], path: Path) -> None:
    """Save a PNG: return against episodes of experience, one line per method and action
    mode (greedy solid, sampled dashed), the reference as a horizontal line."""
    plt = require_pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    budgets = result["budgets"]
    positions = list(range(len(budgets)))
    for index, (method, data) in enumerate(result["methods"].items()):
        color = f"C{index}"
        for mode, curve in data["experience"].items():
            values = curve["return"]
            marker = "s" if mode.endswith("z mean") else "o"
            axes.errorbar(positions, values["mean"], yerr=values["std"], marker=marker, capsize=3,
                          color=color, linestyle="-" if mode.startswith("greedy") else "--",
                          label=f"{method}, {mode}")
    reference = result.get("reference")
    if reference:
        axes.axhline(reference["return"]["mean"][0], color="black", linestyle=":",
                     label="reference (sees the variant)")
    axes.set_xticks(positions, [str(n) for n in budgets])
    axes.set_xlabel("episodes of experience on the variant (n)")
    axes.set_ylabel("return of episode n+1")
    axes.set_title(f"{result['game']}: held-out variants" if result["split"] == "test"
                   else f"{result['game']}: {result['split']} variants")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
