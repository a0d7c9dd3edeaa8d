# Thin on purpose: the ledgerdrill plugin registers itself through the `pytest11` entry
# point (see pyproject.toml), so scenarios and the harness's tests get it the same way.
