"""Autograde preprocessor, right after execution: nothing the kernel made may point outside its folder."""

from pathlib import Path

from nbconvert.preprocessors import Preprocessor

from course.runner import remove, unsafe_entries


class RemoveKernelLinks(Preprocessor):
    """The student's kernel can write its own folder (``autograded/<student>/<assignment>/``), and after it
    has run, nbgrader writes the graded notebook there, sets file permissions there, and copies the folder to
    ``feedback/``, all with the grader's rights and all following symbolic links. A link the kernel left
    (``a.ipynb -> /root/.bashrc``, ``leak.txt -> /etc/shadow``) would make those steps write or read outside
    the folder. The kernel has stopped when this runs: every link, hard link and special file it left in
    its folder is removed, and so are setuid files, folders it closed and folders nested too deep for the
recursive walks that follow."""

    enabled = True

    def preprocess(self, nb, resources):
        for path, why in unsafe_entries(Path(resources["metadata"]["path"])):
            self.log.warning("removed %s left by the student's kernel: %s", path, why)
            remove(path)
        return nb, resources
