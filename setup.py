"""Only the optional C part of the category lookup (`categories/_hostprobe.c`); the rest is in pyproject.toml.

`optional=True`: where there is no C compiler the install goes on without it, and
`categories.hostprobe` uses the same loop in Python (slower, same answers).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("categories._hostprobe", ["categories/_hostprobe.c"], optional=True,
                             extra_compile_args=["-O2"])])
