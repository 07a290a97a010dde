"""The host's pip configuration, for a container build: one merged pip.conf, and the local paths it names.

`pip config list` shows every setting pip will use here (config files and PIP_* variables alike): an
index or mirror, a certificate bundle, a constraints file, a local wheel folder. The build mounts the
merged file as the image's /etc/pip.conf and every local path it names at the same place, read-only,
so pip inside the build resolves exactly as on the host (and takes the same torch CPU wheel).

    python3 deploy/image/pipconf.py OUT_FILE   # writes OUT_FILE, prints one local path per line
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path


def pip_settings(python: str = sys.executable) -> dict[str, dict[str, str]]:
    """`pip config list` as {section: {key: value}}; PIP_* variables (`:env:`) count as [global]."""
    listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True).stdout
    sections: dict[str, dict[str, str]] = {}
    for line in listed.splitlines():
        name, sep, quoted = line.partition("=")
        if not sep:
            continue
        section, _, key = name.rpartition(".")
        section = "global" if section in {"", ":env:"} else section
        sections.setdefault(section, {})[key] = ast.literal_eval(quoted)
    return sections


def local_paths(sections: dict[str, dict[str, str]]) -> list[Path]:
    """Existing local paths the settings name; a `file://.../simple` index brings its parent, where
    its pages' relative links (`../../files/...`) lead."""
    found: set[Path] = set()
    for values in sections.values():
        for value in values.values():
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if not path.is_absolute() or not path.exists():
                    continue
                if word.startswith("file://") and path.name == "simple":
                    path = path.parent
                found.add(path)
    # A folder already mounted covers what lies under it.
    return sorted(p for p in found if not any(q != p and p.is_relative_to(q) for q in found))


def write_config(sections: dict[str, dict[str, str]], out: Path) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    for section, values in sections.items():
        parser[section] = values
    with out.open("w") as handle:
        parser.write(handle)


def main() -> None:
    out = Path(sys.argv[1])
    sections = pip_settings()
    write_config(sections, out)
    for path in local_paths(sections):
        print(path)


if __name__ == "__main__":
    main()
