#!/bin/bash
# mypyc in place in the scratch tree. The venv's setuptools 65.5 rejects
# pyproject.toml's `license = "MIT"` (SPDX string) when mypyc's build/setup.py
# runs from the tree, so pyproject.toml is set aside during the compile only.
cd /tmp/mypyc_tree || exit 1
mv pyproject.toml /tmp/mypyc_pyproject.toml.aside
/work/main/.venv/bin/mypyc "$@"
rc=$?
mv /tmp/mypyc_pyproject.toml.aside pyproject.toml
exit $rc
