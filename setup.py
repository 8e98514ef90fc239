"""hybrid's build: its request path compiled to C by mypyc, when it can be.

Everything declarative is in pyproject.toml; this file adds the extensions
alone. The modules `hybrid/native.py` names in COMPILED are compiled from the
same typed source that the interpreted build runs, as one mypyc group
(`hybrid._native__mypyc` and a small module per compiled module). A build
that cannot compile (no C compiler, mypy missing, a mypyc error) is the
interpreted build, said in one warning line; HYBRID_NO_EXTENSIONS=1 asks for
it. Once the extensions are built, `hybrid/_compiled.json` records them, with
each module's source hash: `hybrid.native` reads it at run time, to never run
an extension whose source has changed since.

The one piece written in Cython (`native.WHOLE_HEADS`: whole clean heads in
one call, before llhttp) is built with them where Cython is installed; a
build without it, or whose compile of it failed, is the compiled build
without it, and the manifest says why.

mypyc type-checks the modules as they install (`hybrid.workers` in the
`hybrid` package), so it compiles a staged copy of the sources in that layout.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import sys
from importlib.metadata import version
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
native: dict[str, Any] = runpy.run_path(os.path.join(HERE, "hybrid", "native.py"))
GROUP = "hybrid._native"  # its library: hybrid/_native__mypyc.<abi>.so
STAGE = os.path.join("build", "mypyc-src")


def _repository_source(module: str) -> str:
    """A compiled module's source in the repository (hybrid.workers is workers/)."""
    path: str = native["module_path"](module, os.path.join(HERE, "hybrid"),
                                      os.path.join(HERE, "workers"))
    return path + ".py"


def _staged_sources() -> list[str]:
    """Copy hybrid and workers into STAGE as they install; the compiled modules' paths there."""
    shutil.rmtree(STAGE, ignore_errors=True)
    leftovers = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", native["MANIFEST"])
    shutil.copytree(os.path.join(HERE, "hybrid"), os.path.join(STAGE, "hybrid"), ignore=leftovers)
    shutil.copytree(os.path.join(HERE, "workers"), os.path.join(STAGE, "hybrid", "workers"),
                    ignore=leftovers)
    return [os.path.join(STAGE, *module.split(".")) + ".py" for module in native["COMPILED"]]


def _mypyc_extensions() -> list[Extension]:
    from mypyc.build import mypycify

    config = os.path.join("build", "mypyc.ini")
    with open(config, "w", encoding="utf-8") as file:
        # The same compile whatever this environment has installed: the runtime
        # dependencies are Any to mypyc (they are C extensions, called as Python).
        file.write("[mypy]\nignore_missing_imports = True\nno_site_packages = True\n")
    return mypycify(["--config-file", config, *_staged_sources()], group_name=GROUP,
                    opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"))


def _whole_heads_extensions() -> list[Extension]:
    from Cython.Build import cythonize

    source = os.path.join("hybrid", "protocol", "whole_head.pyx")
    extensions: list[Extension] = cythonize(
        [Extension(native["WHOLE_HEADS"], [source])], quiet=True,
        build_dir=os.path.join("build", "cython"))
    return extensions


class BuildNative(build_ext):
    """build_ext that compiles the request path, or builds no extension at all."""

    failure = ""  # why the compile failed (the interpreted build is installed)
    whole_heads_failure = ""  # why the Cython piece was not built (the rest was)

    def finalize_options(self) -> None:
        # (here, not in run(): setuptools prepares each extension as it finalizes)
        if self.distribution.ext_modules == [PLACEHOLDER]:
            self.distribution.ext_modules = self._extensions()
        super().finalize_options()

    def _extensions(self) -> list[Extension]:
        if native["extensions_refused"]():
            print(f"hybrid: {native['NO_EXTENSIONS']}=1: building the interpreted build only")
            return []
        missing = native["missing_for_c"]()
        if missing:  # (said before mypyc spends its minute on C nobody can compile)
            self._fell_back(missing)
            return []
        os.makedirs("build", exist_ok=True)
        try:
            extensions = _mypyc_extensions()
        except SystemExit:  # (mypyc exits on the type errors it printed)
            self._fell_back("mypyc refused the source (its errors are in the build's output)")
            return []
        except Exception as exc:  # (mypy missing, say, in a build without isolation)
            self._fell_back(f"{type(exc).__name__}: {exc}")
            return []
        try:
            return extensions + _whole_heads_extensions()
        except ImportError:
            self._whole_heads_not_built("Cython was not installed at build")
        except Exception as exc:  # (Cython refused the source)
            self._whole_heads_not_built(f"{type(exc).__name__}: {exc}")
        return extensions

    def build_extensions(self) -> None:
        # The Cython piece last, and on its own: its failure leaves the rest built.
        whole_heads = [e for e in self.extensions if e.name == native["WHOLE_HEADS"]]
        self.extensions = [e for e in self.extensions if e not in whole_heads]
        super().build_extensions()
        for extension in whole_heads:
            try:
                self.build_extension(extension)
            except Exception as exc:  # (its C does not compile here)
                self._whole_heads_not_built(f"{type(exc).__name__}: {exc}")
            else:
                self.extensions.append(extension)

    def run(self) -> None:
        manifest = self._manifest_path()
        if os.path.exists(manifest):
            os.remove(manifest)
        if self.extensions:
            try:
                super().run()
            except Exception as exc:  # (no compiler, or one that fails)
                self.extensions = []
                self._fell_back(f"{type(exc).__name__}: {exc}")
        if self.extensions:
            _write(manifest, {
                "compiler": f"mypyc {version('mypy')}",
                "python": sys.implementation.cache_tag,
                "library": f"{GROUP}__mypyc",
                "modules": {module: native["source_hash"](_repository_source(module))
                            for module in native["COMPILED"]},
                "whole_heads": self._whole_heads_built(),
            })
        elif self.failure:
            # Said again by the installed hybrid as it starts: pip shows a
            # build's output only when the build fails, and this one did not.
            _write(manifest, {"interpreted": f"the compile failed at install: {self.failure}"})

    def _whole_heads_built(self) -> dict[str, str]:
        if self.whole_heads_failure or \
                not any(e.name == native["WHOLE_HEADS"] for e in self.extensions):
            return {"not_built": self.whole_heads_failure or "it was not built"}
        return {"compiler": f"Cython {version('Cython')}",
                "source": native["source_hash"](os.path.join(HERE, "hybrid", "protocol",
                                                             "whole_head.pyx"))}

    def _whole_heads_not_built(self, why: str) -> None:
        self.whole_heads_failure = why
        print(f"hybrid: warning: the whole-head reader was not built ({why}); the compiled "
              f"build reads every head with llhttp", file=sys.stderr)

    def _fell_back(self, why: str) -> None:
        self.failure = why
        print(f"hybrid: warning: the compiled build failed ({why}); installing the "
              f"interpreted build", file=sys.stderr)

    def _manifest_path(self) -> str:
        if self.inplace:
            package_dir = self.get_finalized_command("build_py").get_package_dir("hybrid")
            return os.path.join(HERE, package_dir, native["MANIFEST"])
        return os.path.join(self.build_lib, "hybrid", native["MANIFEST"])

    def get_outputs(self) -> list[str]:
        outputs: list[str] = super().get_outputs()
        manifest = self._manifest_path()
        return outputs + [manifest] if os.path.exists(manifest) else outputs


def _write(path: str, manifest: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=1)


# One placeholder extension marks the wheel as binary and makes build_ext run;
# BuildNative replaces it with the real ones, so that mypyc runs when building
# and not on every metadata query. HYBRID_NO_EXTENSIONS=1: a pure wheel.
PLACEHOLDER = Extension(f"{GROUP}__mypyc", sources=[])
setup(ext_modules=[] if native["extensions_refused"]() else [PLACEHOLDER],
      cmdclass={"build_ext": BuildNative})
