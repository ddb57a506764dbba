import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Importing the program (for the real-stack tests) imports pulumi_aws, which warns about
    # its own deprecated classes at import time; the program uses none of them.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:.*has been deprecated in favor of:DeprecationWarning:pulumi_aws",
    )
