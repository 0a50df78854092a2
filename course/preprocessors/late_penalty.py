"""nbgrader late-submission plugin (``AssignLatePenalties.plugin_class``): points off per started day late."""

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PointsPerDayLate(LateSubmissionPlugin):
    """The course's policy: ``points_per_day`` points off for every started 24 hours after the due date
    (``timestamp.txt`` against the assignment's due date in the gradebook); nbgrader caps the penalty at the
    score, so a grade never goes below 0. No due date or no timestamp: never late."""

    points_per_day = Float(1.0, help="points taken off for each started day after the due date").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        if total_seconds_late <= 0:
            return None
        days = math.ceil(total_seconds_late / 86400)
        self.log.warning("%s: %.1f h late, %d started day(s): %g points off", student_id,
                         total_seconds_late / 3600, days, days * self.points_per_day)
        return days * self.points_per_day
