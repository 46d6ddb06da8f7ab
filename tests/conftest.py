"""Suite-wide pytest configuration."""

from __future__ import annotations

import os

from hypothesis import settings

# Hypothesis loads its own "ci" profile when CI is set; locally keep runs quick.
settings.register_profile("dev", max_examples=100)
if not os.environ.get("CI"):
    settings.load_profile("dev")
