"""Capture's test helpers live in the package (``bingan_capture.testing``), so scanning
adapters' tests, here or elsewhere, use the same ones."""

from bingan_capture.testing import *  # noqa: F401,F403
