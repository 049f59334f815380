"""Checking a torch.export archive (.pt2) before torch reads it: no member may run code.

``torch.export.load`` unpickles several members (the sample inputs, weights and constants stored
"with pickle", legacy weight files), retrying a refused weights-only unpickle with a full one; it
``pickle.loads`` opaque constants, loads TorchScript objects and AOTInductor shared libraries,
``sympify`` s (``eval``) the symbolic shapes of the program JSON and ``exec`` s its guards when the
program is unlifted. So netatlas reads the zip itself, allows only the members a plain exported
program needs, checks every pickle with torch's weights-only unpickler, checks every symbolic
expression and operator name, drops the guards (netatlas checks input shapes itself), and hands
torch an in-memory copy holding exactly the bytes that were checked.
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import zipfile
import zlib

import torch

from netatlas._errors import MemoryBudgetError, ModelFileError

__all__ = ["checked_pt2"]

_TEXT_RECORDS = {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
_MODEL = re.compile(r"models/([A-Za-z0-9_.-]+)\.json")
_CONFIG = re.compile(r"data/(weights|constants)/([A-Za-z0-9_.-]+)_(weights|constants)_config\.json")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SYMBOL = re.compile(r"[a-z]{1,4}[0-9]+")  # torch's shape symbols: s0, s77, u3, zuf0, ...
_DECIMAL = re.compile(r"[-+]?[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?")
_SYMPY_CALLS = {
    "Symbol", "Integer", "Float", "Rational", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not",
    "Max", "Min", "Abs", "floor", "ceiling", "Mod", "Pow", "Mul", "Add", "sqrt", "Piecewise",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "TruncToFloat",
    "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "IsNonOverlappingAndDenseIndicator",
}
# Peak bytes per unpacked byte: the checked members, the repacked copy torch reads (built while the
# members are released), and the tensors torch makes from it.
_COPIES = 3
_MAX_BITS = 4096  # a shape formula may denote integers up to 2**4096 (sympy evaluates those at once)
_MAX_EXPONENT = 64
_MAX_DEPTH = 100
_SYMPY_NAMES = {"oo", "zoo", "nan", "pi", "E", "I", "True", "False"}
_AST_NODES = (ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.keyword, ast.BinOp, ast.UnaryOp,
              ast.Compare, ast.BoolOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
              ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or)
_OPERATOR_TARGETS = {"getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "neg", "pow",
                     "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "pos", "abs"}


def checked_pt2(path, *, max_bytes: int) -> io.BytesIO:
    """Check the archive at ``path`` and return an in-memory copy of it for ``torch.export.load``.

    Raises ModelFileError, one line naming the file and the first member that is refused, or
    MemoryBudgetError when the members' declared sizes (checked before inflating any) exceed ``max_bytes``.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)  # declared sizes: checked before a byte is inflated
            if _COPIES * total > max_bytes:
                raise MemoryBudgetError(f"{path}: the archive unpacks to {total / 2**20:.1f} MiB, and loading it "
                                     f"holds about {_COPIES} copies ({_COPIES * total / 2**20:.1f} MiB), over the "
                                     f"memory budget of {max_bytes / 2**20:.0f} MiB (NETATLAS_MEMORY_BUDGET)")
            records = _records(path, infos)
            contents = {name: zf.read(info) for name, info in records.items()}
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path}: not a readable torch.export archive (not a zip file: {exc})") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, ValueError, zlib.error) as exc:
        raise ModelFileError(f"{path}: not a readable torch.export archive ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
    return _repack(path, records, _check(path, contents))


def _records(path, infos):
    """Map each record name (without the archive's root folder, as torch names it) to its zip entry."""
    if not infos:
        raise ModelFileError(f"{path}: empty torch.export archive")
    root = infos[0].filename.split("/", 1)[0]
    records = {}
    for info in infos:
        name = info.filename
        if info.is_dir():
            continue
        if not name.startswith(root + "/") or "\\" in name or "/../" in f"/{name}/":
            raise ModelFileError(f"{path}: refusing member {name!r}: not inside the archive folder {root!r}")
        record = name[len(root) + 1:]
        if record in records:
            raise ModelFileError(f"{path}: refusing member {name!r}: it appears twice in the archive")
        records[record] = info
    return records


def _check(path, contents):
    """Check every record; return the (possibly rewritten) bytes of each."""
    def refuse(record, why):
        return ModelFileError(f"{path}: refusing member {record!r}: {why}; netatlas never runs code from "
                              "model files")

    def load_json(record):
        try:
            return json.loads(contents[record])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise refuse(record, f"not valid JSON ({exc})") from None
        except RecursionError:
            raise refuse(record, "JSON nested too deeply to read") from None

    out = dict(contents)
    models = [m.group(1) for m in map(_MODEL.fullmatch, contents) if m]
    if not models:
        raise ModelFileError(f"{path}: not a torch.export archive (no models/*.json member)")
    pickled, raw = set(), set()
    for name in models:
        record = f"models/{name}.json"
        program = load_json(record)
        problem = _program_problem(program)
        if problem:
            raise refuse(record, problem)
        if isinstance(program, dict) and program.get("guards_code"):
            program["guards_code"] = []  # exec'd by torch when unlifting; netatlas checks shapes itself
            out[record] = json.dumps(program).encode()
        pickled |= {f"data/sample_inputs/{name}.pt", f"data/weights/{name}.pt", f"data/constants/{name}.pt"}
    for record in contents:
        m = _CONFIG.fullmatch(record)
        if not m:
            continue
        folder = f"data/{m.group(1)}/"
        config = load_json(record)
        entries = config.get("config") if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            raise refuse(record, "not a payload config")
        for fqn, meta in entries.items():
            file = meta.get("path_name") if isinstance(meta, dict) else None
            if not isinstance(file, str):
                raise refuse(record, f"entry {fqn!r} has no path_name")
            if file.startswith(("custom_obj_", "opaque_obj_")):
                raise refuse(folder + file, "a TorchScript/opaque object (loaded by a full unpickler)")
            (pickled if meta.get("use_pickle") else raw).add(folder + file)
    for record, data in contents.items():
        if record in pickled:
            _check_pickle(record, data, refuse)
        elif not (record in raw or record in _TEXT_RECORDS or record.startswith("extra/")
                  or _MODEL.fullmatch(record) or _CONFIG.fullmatch(record)):
            raise refuse(record, "not part of a plain exported program (shared libraries, TorchScript and "
                                 "other payloads are not loaded)")
    return out


def _check_pickle(record, data, refuse):
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any refusal or corruption: torch would retry with a full unpickle
        first = str(exc).strip().splitlines()
        raise refuse(record, f"a pickle the weights-only unpickler refuses ({type(exc).__name__}"
                             f"{': ' + first[0][:200] if first else ''})") from None


def _program_problem(program):
    """The first symbolic expression or operator name in the program JSON that could run code."""
    for key, value in _walk(program):
        if key == "expr_str" and not _safe_expression(value):
            return f"symbolic expression {str(value)[:120]!r} is not a plain shape formula"
        if key == "target" and not _safe_target(value):
            return f"operator {str(value)[:120]!r} is not a torch op"
    return None


def _walk(obj):
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _safe_expression(text) -> bool:
    """Whether ``sympify(text)`` only builds numbers, shape symbols and sympy functions, of bounded size.

    The text is parsed (never evaluated) into a tree of whitelisted nodes, and the integers it can denote are
    bounded: symbols count as 64-bit, every exponent and shift must be a literal of at most 64, and no value
    may pass 2**4096; so ``9**9**9`` is refused at once instead of being expanded by sympy.
    """
    if not isinstance(text, str) or len(text) > 10_000:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _AST_NODES):
            return False
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS):
            return False
        if isinstance(node, ast.Name) and not (node.id in _SYMPY_CALLS or node.id in _SYMPY_NAMES
                                               or _SYMBOL.fullmatch(node.id)):
            return False
        if isinstance(node, ast.Constant) and not (  # strings: a symbol's name, or Float('1.5', precision=53)
                isinstance(node.value, (bool, int, float)) or (isinstance(node.value, str) and (
                    _SYMBOL.fullmatch(node.value) or _DECIMAL.fullmatch(node.value)))):
            return False
        if isinstance(node, ast.keyword) and not (node.arg and re.fullmatch("[a-z]+", node.arg)
                                                  and isinstance(node.value, ast.Constant)
                                                  and isinstance(node.value.value, (bool, int))):
            return False
    try:
        return _bits(tree.body, 0) <= _MAX_BITS
    except _Unbounded:
        return False


class _Unbounded(Exception):
    """A shape formula whose value cannot be bounded (a non-literal or large exponent, too deep)."""


def _bits(node, depth) -> int:
    """An upper bound on the bit length of the integers ``node`` denotes (symbols are 64-bit)."""
    if depth > _MAX_DEPTH:
        raise _Unbounded
    args = [node.operand] if isinstance(node, ast.UnaryOp) else \
        [node.left, *node.comparators] if isinstance(node, ast.Compare) else \
        node.values if isinstance(node, ast.BoolOp) else []
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, str):  # a symbol name or a decimal: Float('1e999999') is refused by size
            exponent = re.search(r"e[-+]?([0-9]+)", value)
            return 64 + (int(exponent.group(1)) * 4 if exponent and len(exponent.group(1)) < 6 else
                         (_MAX_BITS + 1 if exponent else 0))
        return abs(int(value)).bit_length() if not isinstance(value, float) or math.isfinite(value) else 0
    if isinstance(node, ast.Name):
        return 64
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            return _power_bits(node.left, node.right, depth)
        left, right = _bits(node.left, depth + 1), _bits(node.right, depth + 1)
        if isinstance(node.op, ast.Mult):
            return left + right
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return max(left, right) + 1
        return max(left, right)  # division and modulo do not grow integers
    if isinstance(node, ast.Call):
        name = node.func.id
        if name in ("Pow", "PowByNatural", "FloatPow") and len(node.args) == 2:
            return _power_bits(node.args[0], node.args[1], depth)
        if name in ("LShift",) and len(node.args) == 2:
            return _bits(node.args[0], depth + 1) + _literal(node.args[1])
        inner = [_bits(a, depth + 1) for a in node.args] + [_bits(k.value, depth + 1) for k in node.keywords]
        if name == "Mul":
            return sum(inner)
        return max(inner, default=0) + (len(inner) if name == "Add" else 1)
    return max((_bits(a, depth + 1) for a in args), default=1)


def _power_bits(base, exponent, depth) -> int:
    return _bits(base, depth + 1) * max(_literal(exponent), 1)


def _literal(node) -> int:
    """ceil(|e|) for an exponent literal e of at most 64: an int or float, optionally negated or wrapped in
    Integer, Float('...') or Rational(p, q); anything else (a symbol, a nested power) is refused."""
    while isinstance(node, ast.UnaryOp) or (isinstance(node, ast.Call) and node.func.id in ("Integer", "Float")
                                             and node.args):
        node = node.operand if isinstance(node, ast.UnaryOp) else node.args[0]
    if isinstance(node, ast.Call) and node.func.id == "Rational" and len(node.args) == 2:
        p, q = (_literal(a) for a in node.args)  # |p|, |q| <= 64 themselves
        return math.ceil(p / q) if q else _MAX_EXPONENT
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _MAX_EXPONENT:
        return math.ceil(abs(value))
    raise _Unbounded


def _safe_target(target) -> bool:
    """Whether a node target torch resolves by name is a registered op or a pure operator/math function."""
    if not isinstance(target, str) or not target.startswith(("torch", "_operator", "math", "#")):
        return True  # torch keeps any other target as a plain string
    parts = target.split(".")
    if target.startswith("#") or not all(re.fullmatch(_IDENT, p) and "__" not in p for p in parts[1:]):
        return False
    if target.startswith("_operator"):
        return len(parts) == 2 and parts[1] in _OPERATOR_TARGETS
    if target.startswith("math"):
        return len(parts) == 2 and callable(getattr(math, parts[1], None))
    if len(parts) < 4 or parts[1] != "ops" or hasattr(type(torch.ops), parts[2]):
        return False  # torch.os.system, torch.ops.load_library, ...: not an op
    try:
        resolved = getattr(torch.ops, parts[2])
        for name in parts[3:]:
            resolved = getattr(resolved, name)
    except Exception:  # an unknown op: refused here rather than left to the importer
        return False
    return isinstance(resolved, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator))


def _repack(path, records, contents) -> io.BytesIO:
    buffer = io.BytesIO()
    root = next(iter(records.values())).filename.split("/", 1)[0]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for record in list(contents):
            zf.writestr(f"{root}/{record}", contents.pop(record))  # each member released once copied
    buffer.seek(0)
    return buffer
