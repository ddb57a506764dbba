"""Settings for the whole suite."""

from hypothesis import settings

# Hypothesis fails an example that runs past its deadline (200 ms by default): on a machine
# loaded by other test workers that is timing, not a bug. Hangs are pytest-timeout's to catch.
settings.register_profile("suite", deadline=None, print_blob=True)
settings.load_profile("suite")
