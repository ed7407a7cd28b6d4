"""Capture's test helpers (records, page images, a small real QC) for this adapter's tests."""

from bingan_capture.testing import *  # noqa: F401,F403
