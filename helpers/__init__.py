"""Helpers for the LeNet practices course: getting data (data), drawing plots (plots),
checking answers (checks), and the instructor commands (calibrate, grade; see cli)."""
