"""The course's nbgrader plug-ins, one per module, as nbgrader's own preprocessors are; configured in
``nbgrader_config.py`` (``HideTestCode``, ``ScreenStudentCode``) or by ``course grade`` (``ReplayExecution``)."""

from course.preprocessors.hide_test_code import HideTestCode
from course.preprocessors.replay_execution import ReplayExecution
from course.preprocessors.screen_student_code import ScreenStudentCode

__all__ = ["HideTestCode", "ReplayExecution", "ScreenStudentCode"]
