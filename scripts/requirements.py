"""Print the project's pinned dependencies (run time, build, test) from pyproject.toml, one a line.

The install script feeds this to pip, so pyproject.toml stays the one place they are listed.
"""
import pathlib
import tomllib

project = tomllib.loads((pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in ("build", "test"):
    requirements += project["optional-dependencies"][extra]
print("\n".join(requirements))
