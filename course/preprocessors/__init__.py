"""The course's nbgrader plug-ins, one per module, as nbgrader's own preprocessors are; configured in
``nbgrader_config.py`` (``CheckSubmittedFiles``, ``RestoreCells``, ``RemoveKernelLinks``, ``ScreenStudentCode``,
``HideTestCode``, the late-penalty plugin ``PointsPerDayLate``) or by ``course grade`` (``ReplayExecution``)."""

from course.preprocessors.check_submitted_files import CheckSubmittedFiles
from course.preprocessors.hide_test_code import HideTestCode
from course.preprocessors.late_penalty import PointsPerDayLate
from course.preprocessors.remove_kernel_links import RemoveKernelLinks
from course.preprocessors.replay_execution import ReplayExecution
from course.preprocessors.restore_cells import RestoreCells
from course.preprocessors.screen_student_code import ScreenStudentCode

__all__ = ["CheckSubmittedFiles", "HideTestCode", "PointsPerDayLate", "RemoveKernelLinks", "ReplayExecution",
           "RestoreCells", "ScreenStudentCode"]
