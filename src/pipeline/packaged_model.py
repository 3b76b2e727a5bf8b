"""The loader that models registered before the package layout name in their MLmodel file.

MLflow imports `loader_module` by name to serve a python_function model; those versions name this
module. New versions name pipeline.nn.packaged.
"""

from pipeline.nn.packaged import _load_pyfunc

__all__ = ["_load_pyfunc"]
