"""The class report as one self-contained HTML page: figures embedded as PNG data, no script, no server."""

from __future__ import annotations

import base64
from html import escape

from course.report import figures
from course.report.collect import ClassReport

STYLE = """
body { font-family: "NanumGothic", "Noto Sans CJK KR", "Malgun Gothic", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.muted { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1em; min-width: 7em; }
.card b { display: block; font-size: 1.6em; }
img { max-width: 100%; }
"""


def image(data: bytes | None, alt: str) -> str:
    if data is None:
        return f'<p class="muted">({escape(alt)}: nothing to draw)</p>'
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{escape(str(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(report: ClassReport) -> str:
    summary, passed, total = report.summary(), report.pass_counts(), max(len(report.students), 1)
    cards = "".join(f'<div class="card"><b>{escape(str(v))}</b>{escape(label)}</div>' for label, v in [
        ("submissions", summary["count"]), ("mean", f"{summary['mean']:g}/{report.max_score:g}"),
        ("median", f"{summary['median']:g}"), ("scored 0", summary["zero"]), ("full marks", summary["full"])])
    tests = table(["test cell", "what it checks (the student's feedback)", "points", "passed", "rate"],
                  [[t.name, t.doc, f"{t.points:g}", f"{passed[t.name]}/{len(report.students)}",
                    f"{100 * passed[t.name] / total:.0f}%"] for t in report.tests], numeric={2, 3, 4})
    groups = report.failure_groups()
    failures = table(["reason (first line of the error)", "tests", "students", "who"],
                     [[reason, ", ".join(tests), len(names), ", ".join(names)] for reason, tests, names in groups],
                     numeric={2}) if groups else "<p>No test failed.</p>"
    human = report.needs_human()
    humans = table(["student", "why", "details"], [list(h) for h in human]) if human else (
        "<p>Nothing needs a human look.</p>")
    seconds = report.seconds()
    slow = sorted(((s.seconds, s.name, s.worker) for s in report.students if s.seconds is not None), reverse=True)
    slowest = table(["student", "seconds", "worker"], [[n, f"{sec:.1f}", w or "-"] for sec, n, w in slow[:5]],
                    numeric={1}) if slow else ""
    graded_by = (f"{report.workers} Dask worker(s)" if report.workers else
                 "one nbgrader process (serial), times are the kernel's run of the notebook")
    cost = (f"<p>{len(seconds)} submissions, {sum(seconds):.0f} s of grading in all, median "
            f"{sorted(seconds)[len(seconds) // 2]:.1f} s, graded by {escape(graded_by)}.</p>" if seconds else
            "<p class=muted>No grading times recorded.</p>")
    trusted = report.trusted()
    inside = {key: sum(1 for s in trusted if key in s.measured and s.measured[key].outside_by() == 0)
              for key in report.bands}
    recorded = {key: sum(1 for s in trusted if key in s.measured) for key in report.bands}
    untrusted = len(report.students) - len(trusted)
    bands = table(["value", "expected", "tolerance", "inside the band", "recorded"],
                  [[key, _short(band["expected"]), f"±{band['tolerance']:g}", inside[key], recorded[key]]
                   for key, band in report.bands.items()], numeric={3, 4})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report: {escape(report.assignment)}</title>
<style>{STYLE}</style></head><body>
<h1>Class report: {escape(report.assignment)}</h1>
<p class="muted">Written {escape(report.written)} by <code>course report</code> from the gradebook and the
autograded notebooks; nothing was recomputed.</p>
<h2>Scores</h2><div class="cards">{cards}</div>
{image(figures.scores(report), "score histogram")}
<h2>Tests</h2>{image(figures.pass_rates(report), "pass rate per test")}{tests}
<h2>Why tests failed</h2>{failures}
<h2>Grader validity</h2>
<p>Each student's graded values as the hidden tests measured them, against the calibrated expected value and
tolerance (<code>helpers/expected.json</code>). Green: inside the band; red: outside. Points far outside
with the right structure mean the tolerance may be too tight; wrong answers inside the band, too loose.
{f"Not shown: {untrusted} submission(s) suspected of tampering, whose measurements cannot be trusted."
 if untrusted else ""}</p>
{bands}{image(figures.validity(report), "graded values against the expected band")}
<h2>Needs a human</h2>{humans}
<h2>Grading cost</h2>{cost}{image(figures.cost(report), "grading time per submission")}{slowest}
</body></html>
"""


def _short(value) -> str:
    return ", ".join(f"{v:g}" for v in value) if isinstance(value, list) else f"{value:g}"
