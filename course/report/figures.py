"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes for embedding in the page.

Labels are English; a test's Korean docstring is drawn only when a Hangul font is installed (NanumGothic,
`fonts-nanum`), so that no figure ever shows empty boxes in place of Korean text."""

from __future__ import annotations

import io
import textwrap
from collections import Counter

from course.report.collect import ClassReport

PASS, FAIL, BAND = "#2a9d8f", "#e76f51", "#9ecae1"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    pyplot.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    if hangul_font():
        pyplot.rcParams["font.family"] = ["NanumGothic", "DejaVu Sans"]
    return pyplot


def hangul_font() -> bool:
    from matplotlib import font_manager

    try:
        font_manager.findfont("NanumGothic", fallback_to_default=False)
    except ValueError:
        return False
    return True


def png(figure) -> bytes:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot.close(figure)
    return buffer.getvalue()


def scores(report: ClassReport) -> bytes:
    """Histogram of the total scores, one bar per whole point."""
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(5.5, 2.6))
    counts = Counter(round(score) for score in report.scores())
    points = range(0, int(report.max_score) + 1)
    axes.bar(points, [counts.get(p, 0) for p in points], color="#457b9d", width=0.8)
    axes.set_xticks(list(points))
    axes.set_xlabel(f"score (of {report.max_score:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return png(figure)


def pass_rates(report: ClassReport) -> bytes:
    """One bar per test cell: the share of the class that passed it, labelled with its docstring."""
    pyplot = _pyplot()
    passed, total = report.pass_counts(), max(len(report.students), 1)
    tests = list(reversed(report.tests))
    korean = hangul_font()
    labels = [t.name + ("\n" + "\n".join(textwrap.wrap(t.doc, 34)) if korean and t.doc else "") for t in tests]
    figure, axes = pyplot.subplots(figsize=(7.5, 0.75 + (0.62 if korean else 0.35) * len(tests)))
    rates = [100 * passed[t.name] / total for t in tests]
    bars = axes.barh(range(len(tests)), rates, color=[PASS if r >= 50 else FAIL for r in rates])
    for bar, test in zip(bars, tests):
        axes.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2,
                  f"{passed[test.name]}/{total}", va="center", fontsize=8)
    axes.set_yticks(range(len(tests)), labels, fontsize=8)
    axes.set_xlim(0, 112)
    axes.set_xlabel("passed (% of submissions)")
    return png(figure)


def validity(report: ClassReport) -> bytes | None:
    """Every student's graded values against the expected value and tolerance band: one panel of curves per
    per-epoch value; a scatter when the values are just two scalars (batchnorm's round(test_loss, 2) against
    round(test_acc, 2)), else one strip per scalar. None when no value was recorded."""
    scalars = [k for k, band in report.bands.items() if not isinstance(band["expected"], list)]
    curves = [k for k, band in report.bands.items() if isinstance(band["expected"], list)]
    if not any(s.measured for s in report.trusted()):
        return None
    pyplot = _pyplot()
    panels = len(curves) + (1 if scalars else 0)
    figure, axes = pyplot.subplots(1, panels, figsize=(4.8 * panels, 3.8), squeeze=False)
    axes = list(axes[0])
    for key, ax in zip(curves, axes):
        _curves(report, key, ax)
    if scalars:
        # two scalars alone are one result (batchnorm's loss and accuracy): one point per student
        (_scatter if len(scalars) == 2 and not curves else _strips)(report, scalars, axes[-1])
    figure.tight_layout()
    return png(figure)


def _curves(report: ClassReport, key: str, axes) -> None:
    band = report.bands[key]
    epochs = list(range(1, len(band["expected"]) + 1))
    low = [v - band["tolerance"] for v in band["expected"]]
    high = [v + band["tolerance"] for v in band["expected"]]
    axes.fill_between(epochs, low, high, color=BAND, alpha=0.6, label="expected ± tolerance")
    axes.plot(epochs, band["expected"], "k--", linewidth=1, label="expected")
    for student in report.trusted():
        found = student.measured.get(key)
        if found and isinstance(found.value, list):
            inside = found.outside_by() == 0
            axes.plot(range(1, len(found.value) + 1), found.value, marker="o", markersize=3, linewidth=1,
                      color=PASS if inside else FAIL, alpha=0.8)
    axes.plot([], [], color=PASS, label="student, inside")
    axes.plot([], [], color=FAIL, label="student, outside")
    axes.set_title(key)
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.set_xticks(epochs)
    axes.legend(fontsize=7)


def _scatter(report: ClassReport, keys: list[str], axes) -> None:
    """Two scalar values against each other; the band is the rectangle; identical (rounded) points are one
    marker, its size and label the number of students."""
    from matplotlib.patches import Rectangle

    x_key, y_key = keys
    bx, by = report.bands[x_key], report.bands[y_key]
    axes.add_patch(Rectangle((bx["expected"] - bx["tolerance"], by["expected"] - by["tolerance"]),
                             2 * bx["tolerance"], 2 * by["tolerance"], color=BAND, alpha=0.6,
                             label="expected ± tolerance"))
    axes.plot([bx["expected"]], [by["expected"]], "k+", markersize=10, label="expected")
    points = Counter((s.measured[x_key].value, s.measured[y_key].value,
                      s.measured[x_key].outside_by() == 0 and s.measured[y_key].outside_by() == 0)
                     for s in report.trusted() if x_key in s.measured and y_key in s.measured)
    for (x, y, inside), count in points.items():
        axes.scatter([x], [y], s=30 + 25 * count, color=PASS if inside else FAIL, alpha=0.8, zorder=3)
        axes.annotate(str(count), (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8)
    xs = [x for x, _, _ in points] + [bx["expected"] - 2 * bx["tolerance"], bx["expected"] + 2 * bx["tolerance"]]
    ys = [y for _, y, _ in points] + [by["expected"] - 2 * by["tolerance"], by["expected"] + 2 * by["tolerance"]]
    axes.set_xlim(min(xs) - bx["tolerance"], max(xs) + bx["tolerance"])
    axes.set_ylim(min(ys) - by["tolerance"], max(ys) + by["tolerance"])
    axes.set_xlabel(x_key)
    axes.set_ylabel(y_key)
    axes.set_title(f"{x_key} vs {y_key} (label: students)")
    axes.legend(fontsize=7, loc="best")


def _strips(report: ClassReport, keys: list[str], axes) -> None:
    """One row per scalar value: its band, and a dot per student (offset vertically when values repeat)."""
    for row, key in enumerate(keys):
        band = report.bands[key]
        axes.fill_betweenx([row - 0.3, row + 0.3], band["expected"] - band["tolerance"],
                           band["expected"] + band["tolerance"], color=BAND, alpha=0.6)
        axes.plot([band["expected"]] * 2, [row - 0.3, row + 0.3], "k--", linewidth=1)
        seen = Counter()
        for student in report.trusted():
            found = student.measured.get(key)
            if found and not isinstance(found.value, list):
                offset = 0.07 * (seen[round(found.value, 3)] % 5) - 0.14
                seen[round(found.value, 3)] += 1
                axes.scatter([found.value], [row + offset], s=22, zorder=3,
                             color=PASS if found.outside_by() == 0 else FAIL)
    axes.set_yticks(range(len(keys)), keys, fontsize=8)
    axes.set_ylim(-0.6, len(keys) - 0.4)
    axes.set_xlabel("value (band: expected ± tolerance)")
    axes.set_title("scalar values")


def cost(report: ClassReport) -> bytes | None:
    """Histogram of the grading time per submission."""
    seconds = report.seconds()
    if not seconds:
        return None
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(figsize=(5.5, 2.6))
    axes.hist(seconds, bins=min(20, max(5, len(seconds) // 3)), color="#6d597a")
    axes.set_xlabel("seconds per submission")
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return png(figure)
