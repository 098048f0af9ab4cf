"""`modules`: scripts import it with the rest of `beta.framework`; import_module loads a module by
name from a folder, which is what an inference script may call it for."""
import importlib
import sys


def import_module(uri, name="default_user_module_name", cache=None):
    if uri and uri not in sys.path:
        sys.path.insert(0, uri)
    return importlib.import_module(name)
