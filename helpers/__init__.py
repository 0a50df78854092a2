"""What the course notebooks import, and nothing else: getting data (``data``), recording and drawing
(``plots``), the tests' one-line checks (``checks``) and their expected values (``expected.json``).

The instructor's tools live in the ``course`` package; the sandboxed student kernel sees only this one."""

# The mimetype of the record a value test leaves in its cell's outputs (``checks.record``): what it measured,
# against what. The class report (``course report``) reads it from the autograded notebooks.
MEASURED_MIMETYPE = "application/vnd.lenet-practices.measured+json"
