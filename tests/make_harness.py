"""A Make-communication harness, written from Make's custom-app documentation (developers.make.com:
IML, communication, RPCs, webhooks), to run the generated app against a real bridge on loopback.

What it implements, as documented: IML templates ``{{…}}`` (a string that is one template gives the
raw value, otherwise text), the built-in functions the app uses, the base merged into each request
(``baseUrl`` before a relative ``url``, headers, ``response.error``), ``response.type: binary``,
``valid``, ``error`` (per status code, default otherwise), ``iterate`` (container + condition),
``output``, ``limit``, ``pagination`` (merged into the next request while its condition holds),
``temp``, a webhook's attach (``webhook.url``; ``response.data`` kept) and detach (``webhook.<key>``),
an incoming webhook's ``output``, and custom IML functions (run by Node with ``iml`` built-ins).

What it assumes where Make's documentation is silent (said again in docs/make.md): a value that is
undefined or an empty string is left out of ``qs`` and JSON bodies; IML operators are JavaScript's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


class MakeError(Exception):
    """An error a module raises, as Make shows it: a type (DataError, …) and a message."""

    def __init__(self, type_: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{type_}: {message}")
        self.type = type_
        self.message = message
        self.status = status


# --- IML -----------------------------------------------------------------------------------------

TOKEN = re.compile(r"""\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*')|(==|!=|&&|\|\||[=!+;(),.\[\]])|([A-Za-z_$][\w$]*))""")


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = TOKEN.match(expr, pos)
        if not m:
            raise SyntaxError(f"IML: cannot read {expr[pos:]!r} in {expr!r}")
        number, string, op, name = m.groups()
        if number is not None:
            out.append(("num", number))
        elif string is not None:
            out.append(("str", string[1:-1].replace("\\'", "'").replace("\\\\", "\\")))
        elif op is not None:
            out.append(("op", op))
        else:
            out.append(("name", name))
        pos = m.end()
    return out


def _empty(value: Any) -> bool:
    return value is UNDEFINED or value is None or value == "" or value == [] or value == {}


def _text(value: Any) -> str:
    if value is UNDEFINED or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _replace(text: Any, pattern: str, replacement: Any) -> Any:
    if _empty(text):
        return text
    m = re.fullmatch(r"/(.*)/([gim]*)", pattern, re.S)
    if m:
        flags = re.I if "i" in m.group(2) else 0
        repl = re.sub(r"\$(\d)", r"\\\1", _text(replacement))
        return re.sub(m.group(1), repl, _text(text), count=0 if "g" in m.group(2) else 1, flags=flags)
    return _text(text).replace(pattern, _text(replacement))


def _format_date(value: Any, fmt: str, tz: str = "UTC") -> Any:
    if _empty(value):
        return UNDEFINED
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(ZoneInfo(tz))
    if fmt == "YYYY-MM-DDTHH:mm:ssZ":  # Make's Z token is the offset as +01:00
        return moment.isoformat(timespec="seconds")
    formats = {"YYYY-MM-DD": "%Y-%m-%d"}
    return moment.strftime(formats[fmt])


def _get(obj: Any, path: str) -> Any:
    node = obj
    for part in str(path).split("."):
        if isinstance(node, dict):
            lowered = {k.lower(): v for k, v in node.items()} if node is not None else {}
            node = node.get(part, lowered.get(part.lower(), UNDEFINED))
        elif isinstance(node, list) and part.isdigit():
            node = node[int(part)] if int(part) < len(node) else UNDEFINED
        else:
            return UNDEFINED
    return node


def _switch(value: Any, *cases: Any) -> Any:
    pairs, default = (cases[:-1], cases[-1]) if len(cases) % 2 else (cases, UNDEFINED)
    for i in range(0, len(pairs), 2):
        if pairs[i] == value:
            return pairs[i + 1]
    return default


def _base64(value: Any) -> Any:
    if _empty(value):
        return UNDEFINED
    raw = value if isinstance(value, bytes) else _text(value).encode()
    return base64.b64encode(raw).decode()


BUILTINS: dict[str, Callable[..., Any]] = {
    "ifempty": lambda value, other: other if _empty(value) else value,
    "if": lambda cond, yes, no=UNDEFINED: yes if cond and not _empty(cond) else no,
    "replace": _replace,
    "get": _get,
    "join": lambda items, sep: UNDEFINED if _empty(items) else sep.join(_text(i) for i in items),
    "toCollection": lambda items, key, value: UNDEFINED if _empty(items) else
    {i[key]: i.get(value) for i in items},
    "base64": _base64,
    "formatDate": _format_date,
    "parseNumber": lambda text: UNDEFINED if _empty(text) else (float(text) if "." in str(text) else int(text)),
    "length": lambda value: len(value) if not _empty(value) else 0,
    "min": lambda *values: min(float(v) if isinstance(v, str) else v for v in values),
    "switch": _switch,
    "sha256": lambda text: hashlib.sha256(text if isinstance(text, bytes) else _text(text).encode()).hexdigest(),
}


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], scope: dict[str, Any], functions: dict[str, Callable[..., Any]]):
        self.tokens, self.pos, self.scope, self.functions = tokens, 0, scope, functions

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.pos]
        if value is not None and token[1] != value:
            raise SyntaxError(f"IML: expected {value!r}, got {token[1]!r}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise SyntaxError(f"IML: unexpected {self.peek()!r}")
        return value

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            left = left if left and not _empty(left) else right
        return left

    def and_(self) -> Any:
        left = self.eq()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.eq()
            left = right if left and not _empty(left) else left
        return left

    def eq(self) -> Any:
        left = self.add()
        while self.peek() in (("op", "=="), ("op", "!="), ("op", "=")):
            op = self.take()[1]
            right = self.add()
            same = (None if left is UNDEFINED else left) == (None if right is UNDEFINED else right)
            left = same if op in ("==", "=") else not same
        return left

    def add(self) -> Any:
        left = self.unary()
        while self.peek() == ("op", "+"):
            self.take()
            right = self.unary()
            if isinstance(left, (int, float)) and isinstance(right, (int, float)) and not isinstance(left, bool):
                left = left + right
            else:
                left = _text(left) + _text(right)
        return left

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            value = self.unary()
            return not value or _empty(value)
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text
        if kind == "op" and text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise SyntaxError(f"IML: unexpected {text!r}")
        if text in ("true", "false", "null", "undefined"):
            return {"true": True, "false": False, "null": None, "undefined": UNDEFINED}[text]
        if self.peek() == ("op", "("):
            self.take()
            args: list[Any] = []
            if self.peek() != ("op", ")"):
                args.append(self.or_())
                while self.peek() == ("op", ";"):
                    self.take()
                    args.append(self.or_())
            self.take(")")
            if text not in self.functions:
                raise NameError(f"IML function {text}() is not implemented by the harness")
            return self.functions[text](*args)
        value = self.scope.get(text, UNDEFINED)
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                key = self.take()[1]
                value = _get(value, key) if isinstance(value, (dict, list)) else UNDEFINED
            else:
                key = self.or_()
                self.take("]")
                value = _get(value, str(key)) if isinstance(value, (dict, list)) else UNDEFINED
        return value


TEMPLATE = re.compile(r"{{((?:(?!}}).)*)}}", re.S)


@dataclass
class Iml:
    """Evaluates IML over a scope; ``custom`` holds the app's own functions."""

    functions: dict[str, Callable[..., Any]] = field(default_factory=lambda: dict(BUILTINS))

    def expression(self, expr: str, scope: dict[str, Any]) -> Any:
        return _Parser(_tokens(expr), scope, self.functions).parse()

    def value(self, template: Any, scope: dict[str, Any]) -> Any:
        """A template, recursively through objects and lists."""
        if isinstance(template, dict):
            return {k: self.value(v, scope) for k, v in template.items()}
        if isinstance(template, list):
            return [self.value(v, scope) for v in template]
        if not isinstance(template, str) or "{{" not in template:
            return template
        whole = TEMPLATE.fullmatch(template)
        if whole:
            return self.expression(whole.group(1), scope)
        return TEMPLATE.sub(lambda m: _text(self.expression(m.group(1), scope)), template)


def _prune(value: Any) -> Any:
    """Leave out undefined and empty-string values (qs, JSON bodies)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items() if v is not UNDEFINED and v != ""}
        return {k: v for k, v in pruned.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [_prune(v) for v in value if v is not UNDEFINED]
    return value


class NodeFunctions:
    """The app's custom IML functions, run by one Node process with ``iml.sha256`` and ``Buffer``
    as Make provides them (one JSON line in, one out)."""

    def __init__(self, code_files: dict[str, Path]) -> None:
        code = "\n".join(path.read_text(encoding="utf-8") for path in code_files.values())
        table = ", ".join(code_files)
        script = (
            "const crypto = require('crypto');\n"
            "const iml = { sha256: (t) => crypto.createHash('sha256').update(t).digest('hex') };\n"
            f"{code}\n"
            f"const functions = {{ {table} }};\n"
            "const revive = (k, v) => (v && v.__buffer__ !== undefined ? Buffer.from(v.__buffer__, 'base64') : v);\n"
            "require('readline').createInterface({ input: process.stdin }).on('line', (line) => {\n"
            "  const { name, args } = JSON.parse(line, revive);\n"
            "  process.stdout.write(JSON.stringify({ value: functions[name](...args) }) + '\\n');\n"
            "});\n"
        )
        self._process = subprocess.Popen(["node", "-e", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)
        self.names = list(code_files)

    def call(self, name: str, *args: Any) -> Any:
        def encode(value: Any) -> Any:
            if isinstance(value, bytes):
                return {"__buffer__": base64.b64encode(value).decode()}
            if isinstance(value, dict):
                return {k: encode(v) for k, v in value.items() if v is not UNDEFINED}
            if isinstance(value, list):
                return [encode(v) for v in value]
            return None if value is UNDEFINED else value

        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps({"name": name, "args": encode(list(args))}) + "\n")
        self._process.stdin.flush()
        return json.loads(self._process.stdout.readline())["value"]

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=10)
        if self._process.stdout:
            self._process.stdout.close()


# --- the app and its requests ----------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class MakeApp:
    """The generated app (a local-development folder) and a connection to a bridge."""

    root: Path
    connection: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request sent, for assertions

    def __post_init__(self) -> None:
        self.manifest = json.loads((self.root / "makecomapp.json").read_text(encoding="utf-8"))
        self.base = self._load(self.manifest["generalCodeFiles"]["base"])
        self.iml = Iml()
        self.node = NodeFunctions({name: self.root / meta["codeFiles"]["code"]
                                   for name, meta in self.manifest["components"]["function"].items()})
        for name in self.node.names:
            self.iml.functions[name] = lambda *args, name=name: self.node.call(name, *args)

    def _load(self, relative: str) -> Any:
        return json.loads((self.root / relative).read_text(encoding="utf-8"))

    def code(self, ctype: str, cid: str, code: str) -> Any:
        return self._load(self.manifest["components"][ctype][cid]["codeFiles"][code])

    # -- one request, as Make runs it
    def _send(self, spec: dict[str, Any], scope: dict[str, Any], use_base: bool) -> Response:
        url = self.iml.value(spec["url"], scope)
        headers: dict[str, Any] = {}
        if use_base and url.startswith("/"):
            url = self.iml.value(self.base["baseUrl"], scope) + url
            headers.update(self.iml.value(self.base.get("headers", {}), scope))
        headers.update(self.iml.value(spec.get("headers", {}), scope) or {})
        qs = _prune(self.iml.value(spec.get("qs", {}), scope) or {})
        if qs:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(
                {k: _text(v) for k, v in qs.items()})
        method = self.iml.value(spec.get("method", "GET"), scope).upper()
        data = None
        if "body" in spec and method not in ("GET", "DELETE"):
            body = _prune(self.iml.value(spec["body"], scope))
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        headers = {k: _text(v) for k, v in _prune(headers).items()}
        self.requests.append({"method": method, "url": url, "headers": headers,
                              "body": json.loads(data) if data else None})
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback bridge
                status, raw, answer_headers = answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            status, raw, answer_headers = exc.code, exc.read(), dict(exc.headers)
        lowered = {k.lower(): v for k, v in answer_headers.items()}
        response_spec = spec.get("response", {})
        binary = response_spec.get("type") == "binary"
        parsed: Any = raw if binary and status < 400 else _json_or_text(raw)
        return Response(status, lowered, parsed)

    def _error(self, response: Response, spec: dict[str, Any], scope: dict[str, Any], use_base: bool) -> None:
        errors = dict(self.base.get("response", {}).get("error", {})) if use_base else {}
        own = spec.get("response", {}).get("error")
        if isinstance(own, dict):
            errors.update(own)
        chosen = errors.get(str(response.status), errors)
        message = self.iml.value(chosen.get("message", "Error"), scope)
        raise MakeError(chosen.get("type", "RuntimeError"), _text(message), response.status)

    def run(self, spec: dict[str, Any], parameters: dict[str, Any], *, extra: dict[str, Any] | None = None,
            use_base: bool = True, connection: dict[str, Any] | None = None) -> list[Any]:
        """Run one communication (a request or a list of requests); returns the output bundles."""
        specs = spec if isinstance(spec, list) else [spec]
        temp: dict[str, Any] = {}
        outputs: list[Any] = []
        for one in specs:
            scope: dict[str, Any] = {"parameters": parameters, "connection": connection or self.connection,
                                     "temp": temp, "now": datetime.now(UTC), **(extra or {})}
            if "condition" in one and not self.iml.value(one["condition"], scope):
                continue
            outputs = self._run_one(one, scope, use_base)
        return outputs

    def _run_one(self, spec: dict[str, Any], scope: dict[str, Any], use_base: bool) -> list[Any]:
        response_spec = spec.get("response", {})
        outputs: list[Any] = []
        page_spec = dict(spec)
        limit: Any = None
        while True:
            response = self._send(page_spec, scope, use_base)
            rscope = {**scope, "body": response.body, "headers": response.headers, "statusCode": response.status}
            valid = response_spec.get("valid", True)
            if response.status >= 400 or not self.iml.value(valid, rscope):
                self._error(response, spec, rscope, use_base)
            if "temp" in response_spec:
                scope["temp"].update(self.iml.value(response_spec["temp"], rscope))
            limit = self.iml.value(response_spec.get("limit"), rscope) if "limit" in response_spec else None
            iterate = response_spec.get("iterate")
            if iterate is None:
                outputs.append(self.iml.value(response_spec.get("output", "{{body}}"), rscope))
            else:
                container = iterate if isinstance(iterate, str) else iterate["container"]
                for item in self.iml.value(container, rscope) or []:
                    iscope = {**rscope, "item": item}
                    if isinstance(iterate, dict) and "condition" in iterate and \
                            not self.iml.value(iterate["condition"], iscope):
                        continue
                    outputs.append(self.iml.value(response_spec.get("output", "{{item}}"), iscope))
            if limit is not None and len(outputs) >= int(limit):
                return outputs[: int(limit)]
            pagination = spec.get("pagination")
            if not pagination or not self.iml.value(pagination.get("condition", True), rscope):
                return outputs
            merged = dict(spec)
            merged["qs"] = {**spec.get("qs", {}), **{k: self.iml.value(v, rscope)
                                                     for k, v in pagination.get("qs", {}).items()}}
            page_spec = merged

    # -- components
    def test_connection(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Verify a connection as Make does when it is created; returns its metadata (the label)."""
        spec = self.code("connection", "lreBridge", "communication")
        body = self.run({**spec, "response": {**spec["response"], "output": "{{body}}"}}, parameters,
                        use_base=False, connection={})[0]
        metadata: dict[str, Any] = self.iml.value(spec["response"]["metadata"], {"body": body})
        return metadata

    def module(self, cid: str, parameters: dict[str, Any]) -> list[Any]:
        return self.run(self.code("module", cid, "communication"), parameters)

    def rpc(self, cid: str, parameters: dict[str, Any]) -> list[Any]:
        return self.run(self.code("rpc", cid, "communication"), parameters)

    def attach(self, hook: str, parameters: dict[str, Any], url: str) -> dict[str, Any]:
        """Attach a dedicated webhook: returns what Make keeps (``response.data``)."""
        spec = self.code("webhook", hook, "attach")
        response_spec = spec["response"]
        out = self.run({**spec, "response": {**response_spec, "output": response_spec["data"]}}, parameters,
                       extra={"webhook": {"url": url, "id": 1}})
        data: dict[str, Any] = out[0]
        return data

    def detach(self, hook: str, parameters: dict[str, Any], data: dict[str, Any]) -> None:
        self.run(self.code("webhook", hook, "detach"), parameters, extra={"webhook": data})

    def incoming(self, hook: str, headers: dict[str, str], body: bytes) -> Any:
        """What the instant trigger outputs for one delivery received by the webhook."""
        spec = self.code("webhook", hook, "communication")
        scope = {"body": json.loads(body), "headers": {k.lower(): v for k, v in headers.items()}}
        return self.iml.value(spec["output"], scope)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


# --- interface checks ------------------------------------------------------------------------------

TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str), "email": lambda v: isinstance(v, str), "url": lambda v: isinstance(v, str),
    "filename": lambda v: isinstance(v, str) and bool(v), "buffer": lambda v: isinstance(v, bytes),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "uinteger": lambda v: isinstance(v, int) and v >= 0, "number": lambda v: isinstance(v, (int, float)),
    "boolean": lambda v: isinstance(v, bool), "date": lambda v: isinstance(v, str) and bool(
        re.match(r"^\d{4}-\d{2}-\d{2}", v)),
    "collection": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list), "any": lambda v: True,
}


def interface_mismatches(interface: list[dict[str, Any]], output: Any, where: str = "") -> list[str]:
    """Where ``output`` does not match the declared interface (null is allowed: an unset value)."""
    problems: list[str] = []
    if not isinstance(output, dict):
        return [f"{where or 'output'} is not an object"]
    for param in interface:
        name = param["name"]
        value = output.get(name, UNDEFINED)
        path = f"{where}.{name}" if where else name
        if value is UNDEFINED:
            problems.append(f"{path} is missing")
            continue
        if value is None:
            continue
        if not TYPE_CHECKS[param["type"]](value):
            problems.append(f"{path} should be {param['type']}, got {type(value).__name__}")
            continue
        if param["type"] == "collection" and isinstance(param.get("spec"), list):
            problems += interface_mismatches(param["spec"], value, path)
        if param["type"] == "array" and isinstance(param.get("spec"), dict) and param["spec"].get("spec"):
            for i, item in enumerate(value):
                problems += interface_mismatches(param["spec"]["spec"], item, f"{path}[{i}]")
    return problems
