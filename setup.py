"""Shim so that ``pip install .`` works with older tooling; metadata lives in setup.cfg."""
from setuptools import setup

setup()
