"""Autograde sanitize preprocessor: grade only the files a student handed in, never what they link to."""

import os
from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from nbgrader.coursedir import CourseDirectory

from course.runner import remove, unsafe_entries


class CheckSubmittedFiles(Preprocessor):
    """Runs first, before nbgrader sanitizes the notebook and before any kernel starts.

    nbgrader copies a submission to ``autograded/`` with ``shutil.copy``, which follows symbolic links: a
    submitted ``notes.txt -> /etc/shadow`` or ``-> ../../other/a/a.ipynb`` would be read with the grader's
    rights and handed to the student's kernel (and from there to the feedback). A notebook that is a link
    is not graded (this raises, so nbgrader records the failure); every other link, hard link or special
    file loses its copy in ``autograded/`` before the kernel starts."""

    enabled = True

    def preprocess(self, nb, resources):
        student, assignment = resources["nbgrader"]["student"], resources["nbgrader"]["assignment"]
        folders = CourseDirectory(config=self.config)
        submitted = Path(folders.format_path(folders.submitted_directory, student, assignment))
        autograded = Path(folders.format_path(folders.autograded_directory, student, assignment))
        for path, why in unsafe_entries(submitted):
            if path.name == f"{resources['nbgrader']['notebook']}.ipynb" and path.parent == submitted:
                raise ValueError(f"{path.name} is a {why}: not graded (hand in the notebook itself)")
            copy = autograded / path.relative_to(submitted)
            self.log.warning("%s is a %s: ignored", path, why)
            if os.path.lexists(copy):
                remove(copy)
        return nb, resources
