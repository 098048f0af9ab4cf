"""The modules SageMaker's framework containers have preinstalled, for scripts that import them.

A finder placed last on `sys.meta_path` is asked only for what nothing else provides, so a
package the user installed always wins. It answers with:
- the real package from PyPI (`sagemaker_inference`, `sagemaker_training`), installed into the
  requirements cache the first time a model needs it, once per interpreter;
- otherwise a stand-in of ours under `stand_ins/` (`sagemaker_containers`, whose last release
  does not import on Python 3.10 or later, and `sagemaker_xgboost_container`, which is not on
  PyPI), written from their documented behaviour and the calls published scripts make.
"""
import importlib.abc
import importlib.machinery
import os
import subprocess
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Optional, Sequence

STAND_INS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stand_ins")
OWN = ("sagemaker_containers", "sagemaker_xgboost_container")
FROM_PYPI = {"sagemaker_inference": "sagemaker-inference", "sagemaker_training": "sagemaker-training"}


def cache_root() -> str:
    return os.environ.get("BATCHFORM_REQUIREMENTS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "batchform", "requirements")


class ContainerModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Optional[Sequence[str]] = None, target: Optional[ModuleType] = None
    ) -> Optional[ModuleSpec]:
        if "." in name:
            return None  # submodules are found through their package's __path__
        if name in OWN:
            return importlib.machinery.PathFinder.find_spec(name, [STAND_INS])
        if name in FROM_PYPI:
            folder = self.install(FROM_PYPI[name])
            return importlib.machinery.PathFinder.find_spec(name, [folder])
        return None

    @staticmethod
    def install(package: str) -> str:
        """pip-installs `package` once per interpreter into the cache; its folder goes last on sys.path."""
        tag = f"{sys.implementation.cache_tag}-{package}"
        target = os.path.join(cache_root(), tag)
        if not os.path.exists(os.path.join(target, ".complete")):
            import shutil

            shutil.rmtree(target + ".partial", ignore_errors=True)
            print(f"batchform_serve: installing {package} (SageMaker's containers have it) into {target}",
                  file=sys.stderr, flush=True)
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                 "--target", target + ".partial", package],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise ImportError(
                    f"the script imports {package.replace('-', '_')}, which SageMaker's containers have "
                    f"preinstalled; pip install {package} failed: {result.stderr.strip()[-2000:]}. "
                    f"Install it into this Python ({sys.executable}) or add it to code/requirements.txt.")
            shutil.rmtree(target, ignore_errors=True)
            os.rename(target + ".partial", target)
            open(os.path.join(target, ".complete"), "w").close()
        if target not in sys.path:
            sys.path.append(target)  # last: the user's own packages win
        return target


def install() -> None:
    if not any(isinstance(finder, ContainerModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(ContainerModuleFinder())
