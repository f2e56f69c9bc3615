"""Finds the participant's model class: the first subclass of the base class named in Setup
among the modules of the code directory, as CrunchDAO's model-runner does."""

import importlib
import inspect
import pkgutil

# Modules that are never walked: running setup.py would call setuptools (and usually exit).
_SKIPPED_MODULES = {"setup"}


class NotFound(LookupError):
    """No usable model class: answered BAD_IMPLEMENTATION."""


def resolve_base(class_name):
    """Imports the dotted base class name, e.g. cruncher.ModelBaseClass."""
    module_name, _, attr = class_name.rpartition(".")
    if not module_name or not attr:
        raise NotFound(f"base class {class_name!r} is not a dotted module.Class name")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure is the submission's problem
        raise NotFound(f"Import error occurred importing base class module {module_name!r}: {type(e).__name__}: {e}") from e
    base = getattr(module, attr, None)
    if not inspect.isclass(base):
        raise NotFound(f"base class {class_name!r}: module {module_name!r} has no class {attr!r}")
    return base


def find_subclass(class_name, code_dir):
    """Returns the first concrete subclass of class_name defined in a module of code_dir.

    Modules are walked in name order (packages recursively), each class is considered in the
    module that defines it, and the base class itself and abstract classes are skipped. A
    module that fails to import fails the lookup: a broken submission should say so, not
    silently run another class."""
    base = resolve_base(class_name)
    for info in pkgutil.walk_packages([code_dir], onerror=_raise_walk_error):
        if info.name in _SKIPPED_MODULES:
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception as e:  # noqa: BLE001
            raise NotFound(f"Import error occurred in module {info.name!r}: {type(e).__name__}: {e}") from e
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                obj is not base
                and issubclass(obj, base)
                and obj.__module__ == module.__name__
                and not inspect.isabstract(obj)
            ):
                return obj
    raise NotFound(f"No Inherited class found: no subclass of {class_name} in {code_dir}")


def _raise_walk_error(name):
    raise NotFound(f"Import error occurred in package {name!r}")
