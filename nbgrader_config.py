"""nbgrader configuration of the course: the course folder is this repository's root."""

c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "lenet-practices"

# Training takes ~15-60 s per cell on a 2-core machine; nbgrader's default cell timeout is 30 s.
c.Execute.timeout = 600
# The answer stub is a comment, so a blank answer still runs (and then fails the tests).
c.ClearSolutions.code_stub = {"python": "# 여기에 코드를 작성하세요"}
# Data files (2.png) travel with the notebooks; nothing else does.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.npz"]

# Feedback shows each failed test's docstring and message, never the hidden test code.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

from course.preprocessors import (  # noqa: E402
    CheckSubmittedFiles,
    HideTestCode,
    PointsPerDayLate,
    RemoveKernelLinks,
    RestoreCells,
    ScreenStudentCode,
)

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, HideTestCode, CSSHTMLHeaderPreprocessor]

# Grading is safe to run on hostile code (README "Threat model"):
# every kernel nbgrader starts (autograde and Validate) is the bubblewrap sandbox (course/sandbox.py;
# `course install-sandbox` installs the kernel spec, `make setup` runs it) ...
c.Execute.kernel_name = "course-sandbox"
# Before anything runs, a submission's links (to the gradebook, source/, another student, /etc/shadow) lose
# their copies: nbgrader copies with the grader's rights and follows them ...
from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    IgnorePattern,
    LimitOutput,
    OverwriteKernelspec,
    SaveAutoGrades,
)

# RestoreCells is nbgrader's OverwriteCells that also survives ordinary accidents (README "When a submission
# arrives broken"): stripped nbgrader metadata, cells out of order, and deleted test cells, which it re-inserts
# from the release and runs (nbgrader's own add_missing_cells, placed so that it works for these notebooks).
c.Autograde.sanitize_preprocessors = [CheckSubmittedFiles, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                      RestoreCells, CheckCellMetadata]
c.OverwriteCells.add_missing_cells = True
# ... after the kernel has run, the links it left in its folder are removed before nbgrader writes there, and
# the student's code is screened for changes to what the tests rely on.
c.Autograde.autograde_preprocessors = [Execute, RemoveKernelLinks, ScreenStudentCode, IgnorePattern,
                                       ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                                       AssignLatePenalties, CheckCellMetadata]

# Late work (README "Late submissions"): a submission is late when its timestamp.txt is after the assignment's due
# date in the gradebook (`nbgrader db assignment add batchnorm --duedate="2026-12-04 23:59:59 +09:00"`); nbgrader's
# AssignLatePenalties (above) then takes 1 point off per started day late, never below 0.
c.AssignLatePenalties.plugin_class = PointsPerDayLate
c.PointsPerDayLate.points_per_day = 1.0
