"""The built wheel holds the package and its py.typed, and nothing else of the checkout."""

import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "gpuvec/py.typed" in names, "py.typed is missing from the wheel"
strays = [n for n in names if not (n.startswith("gpuvec/") or ".dist-info/" in n)]
assert not strays, f"the wheel holds files outside the package: {strays[:10]}"
assert not [n for n in names if "/_build/" in n or n.endswith((".pyc", ".so"))], "build output in the wheel"
print(f"{sys.argv[1]}: {len(names)} files, the package and py.typed only")
