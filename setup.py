"""Only the optional C parts of the category lookup (`categories.native`); the rest is in pyproject.toml.

`optional=True`: where there is no C compiler the install goes on without them, and
the lookups use their Python twins (slower, same answers).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(f"categories.{name}", [f"categories/{name}.c"], optional=True,
                             extra_compile_args=["-O2"])
                   for name in ("_hostprobe", "_fasturl")])
