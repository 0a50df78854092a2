"""What the course notebooks import, and nothing else: getting data (``data``), recording and drawing
(``plots``), the tests' one-line checks (``checks``) and their expected values (``expected.json``).

The instructor's tools live in the ``course`` package; the sandboxed student kernel sees only this one."""
