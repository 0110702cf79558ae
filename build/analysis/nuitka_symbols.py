"""Nuitka's C names -> the Python modules they were compiled from (Nuitka 4.3).

Nuitka names a module's C code after the module (nuitka/nodes/ModuleNodes.py getCodeName:
utils/CStrings.py encodePythonIdentifierToC): '.' becomes '$', any other character that is not
a C identifier character becomes '$$<ord>$'. A function's code name is the module's code name +
'$$$' + function part (nodes/NodeBases.py), and the C symbols put a prefix in front:
impl_<code>, MAKE_FUNCTION_<code>, modulecode_<code>, module_var_accessor_<code>$<variable>, ...
Each module is one C file, module.<dotted name>.c, which names the static helpers that the
symbol table lists after it (STT_FILE), even those whose own names carry no module.
"""

from __future__ import annotations

import re

# Prefixes of symbols whose rest is a module's code name.
_MODULE_PREFIXES = ("modulecode_", "module_code_", "moduledict_")
# Prefixes of function symbols: the code name before '$$$' is the module's.
_FUNCTION_PREFIXES = ("impl_", "MAKE_FUNCTION_", "MAKE_GENERATOR_", "MAKE_COROUTINE_", "MAKE_ASYNCGEN_",
                      "cache_frame_frame_", "cache_frame_")
# Prefixes of module objects whose rest is a code name only when it holds a '$' (module_filename_obj
# is a helper, module_urllib3$util is urllib3.util's module object).
_OBJECT_PREFIXES = ("module_owner_", "module_import_", "entry_", "module_")
_ACCESSOR = "module_var_accessor_"
_ENCODED = re.compile(r"\$\$(\d+)\$")
_MODULE_FILE = re.compile(r"^(?:.*/)?module\.(.+)\.c$")
RUNTIME = "[nuitka runtime]"


def decode_code_name(code: str) -> str:
    """requests$api -> requests.api; a$$45$b -> a-b."""
    out, pos = [], 0
    for match in _ENCODED.finditer(code):
        out.append(code[pos:match.start()].replace("$", "."))
        out.append(chr(int(match.group(1))))
        pos = match.end()
    out.append(code[pos:].replace("$", "."))
    return "".join(out)


def module_of_symbol(name: str) -> str | None:
    """The Python module a Nuitka C symbol belongs to, or None when its name does not say.

    impl_requests$api$$$function__1_request -> requests.api
    module_var_accessor_requests$api$request -> requests.api (the last part is the variable)
    modulecode_yaml$loader -> yaml.loader
    """
    name = name.split(".", 1)[0]  # gcc's clones: foo.constprop.0, foo.isra.0, foo.cold
    if "$$$" in name:
        head = name.split("$$$", 1)[0]
        for prefix in _FUNCTION_PREFIXES:
            if head.startswith(prefix):
                return decode_code_name(head[len(prefix):]) or None
        return None
    if name.startswith(_ACCESSOR) and "$" in name[len(_ACCESSOR):]:
        return decode_code_name(name[len(_ACCESSOR):].rsplit("$", 1)[0]) or None
    for prefix in _MODULE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return decode_code_name(name[len(prefix):])
    for prefix in _OBJECT_PREFIXES:
        if name.startswith(prefix) and "$" in name[len(prefix):]:
            return decode_code_name(name[len(prefix):])
    return None


def module_of_file(path: str) -> str | None:
    """module.requests.api.c -> requests.api (the C file Nuitka writes per module)."""
    match = _MODULE_FILE.match(path)
    return match.group(1) if match else None
